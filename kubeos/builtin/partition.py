"""Built-in partition install: write the image onto the inactive root, fsync, read back.

Thin on purpose: the byte work lives in `kubeos.node.blockio`. An image streamed onto the
target already (`on_target`) is not written twice; either way the bytes on the medium
are read back (page cache dropped first) and must hash to what was fetched.
"""

from __future__ import annotations

import logging

from kubeos.contracts import FetchedImage, NodeContext, Partition
from kubeos.errors import InstallError
from kubeos.hooks import hookimpl
from kubeos.node import blockio

log = logging.getLogger(__name__)


@hookimpl
def kubeos_install_partition(
    image: FetchedImage, target: Partition, node: NodeContext
) -> Partition:
    if image.size > target.size:
        raise InstallError(
            f"image of {image.size} bytes does not fit root {target.label} ({target.size} bytes)"
        )
    expected = image.sha256
    if not image.on_target:
        written = blockio.copy_into(image.path, image.size, target, node)
        if expected and written != expected:
            raise InstallError(f"spool file {image.path} changed since it was fetched")
        expected = written
    elif not expected:
        raise InstallError("image was streamed onto the target without a SHA-256 to check")
    else:
        with blockio.PartitionWriter(target) as out:
            out.sync()
    blockio.drop_cache(target.path, target.offset, image.size)
    got = blockio.sha256_range(target.path, target.offset, image.size, node)
    if got != expected:
        raise InstallError(
            f"read-back of root {target.label} does not match: wrote sha256:{expected},"
            f" read sha256:{got}"
        )
    log.info("root %s written and read back: %d bytes, sha256:%s", target.label, image.size, got)
    return target
