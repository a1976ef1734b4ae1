"""The scratch life cycle of a container-image upgrade: rootfs tree -> ext4 image.

Each fetch works in its own private directory under `node.scratch()` (mode 0700: the tree
holds setuid binaries and device nodes). The directory is removed when the fetch ends,
whatever happens; only the finished partition image survives it, listed in
`FetchedImage.temp_paths` so the upgrade removes it once installed or refused. It is
built inside the private directory and only then moved out, mode 0600 (it holds the new
root's /etc/shadow). Whatever a killed fetch left behind is swept before the next one
(`kubeos.node.scratch`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from kubeos.contracts import FetchedImage, NodeContext, Partition
from kubeos.node import ext4
from kubeos.node.scratch import remove_tree, sweep
from kubeos.rootfs.extract import RootfsExtractor
from kubeos.rootfs.mkfs import make_ext4

log = logging.getLogger(__name__)


@contextlib.contextmanager
def workspace(node: NodeContext, prefix: str) -> Iterator[Path]:
    """A private directory under the node's scratch space, removed on exit.

    Runs under the node lock (inside the fetch hook), so leftovers of a killed earlier
    fetch are swept first.
    """
    sweep(node)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=node.scratch()))
    try:
        yield work
    finally:
        remove_tree(work)
        log.debug("removed scratch directory %s", work)


def partition_image(
    node: NodeContext,
    target: Partition,
    digest: str,
    work: Path,
    fill: Callable[[RootfsExtractor], None],
) -> FetchedImage:
    """Let `fill` apply the image's layers to a fresh tree, then build the ext4 image.

    The tree's budget is the target partition's size (an image that cannot fit stops while
    extracting). The image file lands in `node.scratch()` next to `work`, not inside it.
    """
    extractor = RootfsExtractor(work / "rootfs", max_bytes=target.size)
    fill(extractor)
    node.report("rootfs", extractor.usage.bytes, target.size)
    name = f"kubeos-root-{secrets.token_hex(8)}.ext4"
    built = work / name  # inside the 0700 work dir: nobody else can open it meanwhile
    image = node.scratch() / name
    # Keep the filesystem UUID the target had: a grub.cfg entry booting `root=UUID=...`
    # then still finds its root (U5); a target without a filesystem gets a fresh one.
    keep_uuid = ext4.fs_uuid(target.path, target.offset)
    try:
        make_ext4(extractor.root, built, target.size, uuid=keep_uuid)
        os.chmod(built, 0o600)
        os.rename(built, image)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            built.unlink()
        raise
    size = image.stat().st_size
    log.info(
        "root image for %s: %s, %d bytes (%d bytes of files, %d entries, %d skipped)",
        digest,
        image,
        size,
        extractor.usage.bytes,
        extractor.usage.entries,
        len(extractor.usage.skipped),
    )
    return FetchedImage(path=image, size=size, digest=digest, temp_paths=[image])
