"""The scratch life cycle of a container-image upgrade: rootfs tree -> ext4 image.

Each fetch works in its own private directory under `node.scratch()` (mode 0700: the tree
holds setuid binaries and device nodes). The directory is removed when the fetch ends,
whatever happens; only the finished partition image survives it, listed in
`FetchedImage.temp_paths` so the upgrade removes it once installed or refused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from kubeos.contracts import FetchedImage, NodeContext, Partition
from kubeos.rootfs.extract import RootfsExtractor
from kubeos.rootfs.mkfs import make_ext4

log = logging.getLogger(__name__)


def _remove_tree(path: Path) -> None:
    def retry_writable(func: Callable[..., object], p: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            func(p)

    shutil.rmtree(path, onerror=retry_writable)
    if path.exists():
        log.warning("could not remove scratch directory %s", path)


@contextlib.contextmanager
def workspace(node: NodeContext, prefix: str) -> Iterator[Path]:
    """A private directory under the node's scratch space, removed on exit."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=node.scratch()))
    try:
        yield work
    finally:
        _remove_tree(work)
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
    image = node.scratch() / f"kubeos-root-{secrets.token_hex(8)}.ext4"
    try:
        make_ext4(extractor.root, image, target.size)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            image.unlink()
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
