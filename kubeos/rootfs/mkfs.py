"""Build an ext4 partition image from a directory with `mke2fs -d`: no mount, no loop device.

`mke2fs -d` copies owners, modes (setuid included), hard links, symlinks, device nodes
and extended attributes from the tree, so the image is the tree as extracted. The ext4
feature set comes from the node's own mke2fs.conf, which matches the node's kernel and
e2fsck (e.g. no `orphan_file` where e2fsck predates 1.47).
"""

from __future__ import annotations

import logging
from pathlib import Path

from kubeos import runner
from kubeos.errors import ImageError
from kubeos.runner import CommandError

log = logging.getLogger(__name__)
MIN_SIZE = 8 << 20
MKFS_TIMEOUT = 1800.0


def make_ext4(rootfs: Path, image: Path, size: int, label: str = "") -> None:
    """Write an ext4 file system of exactly `size` bytes (rounded down to 4 KiB) to `image`."""
    size -= size % 4096
    if size < MIN_SIZE:
        raise ImageError(f"target partition of {size} bytes is too small for an ext4 root")
    with open(image, "xb") as f:  # a fresh file: never reuse whatever lies there
        f.truncate(size)
    argv: list[str | Path] = ["mke2fs", "-q", "-F", "-t", "ext4", "-d", rootfs]
    if label:
        argv += ["-L", label[:16]]
    argv.append(image)
    try:
        runner.run(argv, timeout=MKFS_TIMEOUT)
    except CommandError as exc:
        raise ImageError(
            f"building the ext4 root image failed (does the image fit {size} bytes?): {exc}"
        ) from exc
    log.info("built ext4 root image %s (%d bytes) from %s", image, size, rootfs)
