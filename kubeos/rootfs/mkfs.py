"""Build an ext4 partition image from a directory with `mke2fs -d`: no mount, no loop device.

`mke2fs -d` copies owners, modes (setuid included), hard links, symlinks, device nodes
and extended attributes from the tree, so the image is the tree as extracted. The ext4
feature set comes from the node's own mke2fs.conf, which matches the node's kernel and
e2fsck (e.g. no `orphan_file` where e2fsck predates 1.47).

`uuid` keeps the filesystem UUID the target root had: nodes whose grub.cfg boots
`root=UUID=<uuid>` find the new root under the same name (U5). A fresh random UUID would
make the upgrade refuse to switch (the boot entry would not mount it).
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from pathlib import Path

from kubeos import runner
from kubeos.errors import ImageError
from kubeos.runner import CommandError

log = logging.getLogger(__name__)
MIN_SIZE = 8 << 20
MKFS_TIMEOUT = 1800.0


def make_ext4(
    rootfs: Path, image: Path, size: int, label: str = "", uuid: str | None = None
) -> None:
    """Write an ext4 file system of exactly `size` bytes (rounded down to 4 KiB) to `image`.

    With `uuid` (e.g. `kubeos.node.ext4.fs_uuid` of the target root) the new filesystem
    gets that UUID instead of a random one.
    """
    size -= size % 4096
    if size < MIN_SIZE:
        raise ImageError(f"target partition of {size} bytes is too small for an ext4 root")
    with open(image, "xb") as f:  # a fresh file: never reuse whatever lies there
        f.truncate(size)
    argv: list[str | Path] = ["mke2fs", "-q", "-F", "-t", "ext4", "-d", rootfs]
    if label:
        argv += ["-L", label[:16]]
    if uuid:
        try:
            fs_uuid = str(uuidlib.UUID(uuid))  # canonical form; refuses anything else
        except ValueError as exc:
            raise ImageError(f"filesystem UUID {uuid!r} is not a UUID") from exc
        argv += ["-U", fs_uuid]
    argv.append(image)
    try:
        runner.run(argv, timeout=MKFS_TIMEOUT)
    except CommandError as exc:
        raise ImageError(
            f"building the ext4 root image failed (does the image fit {size} bytes?): {exc}"
        ) from exc
    log.info("built ext4 root image %s (%d bytes) from %s", image, size, rootfs)
