"""kubeos plugin providing image type `disk`: a raw root-filesystem image over http(s).

The image is streamed straight onto the inactive root partition (hashing as it arrives),
or into a spool file under the node's scratch directory when the target cannot be opened
for writing yet (or node.extras["image_disk.spool"] == "always"). Transport rules D1-D3 and
G3 are checked before the first byte is requested (`source.py`); the transfer itself,
with timeouts and Range resume, is `download.py`.

Streamed onto the target, the image's first MiB is written last (R3,
`PartitionWriter(head_last=True)`): a download cut short, even by SIGKILL, never leaves a
root with a filesystem signature. Spool files a killed fetch left are swept first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from kubeos.contracts import FetchedImage, NodeContext, Partition, Provides
from kubeos.errors import ImageError, InstallError
from kubeos.hooks import hookimpl
from kubeos.models.os import OSSpec
from kubeos.node.blockio import WRITEBACK, PartitionWriter, invalidate
from kubeos.node.scratch import sweep
from kubeos_image_disk.download import RetryPolicy, download
from kubeos_image_disk.source import redacted, transfer_policy

log = logging.getLogger(__name__)
IMAGE_TYPE = "disk"


class SpoolWriter:
    """A spool file with the same interface as PartitionWriter (seek, write, sync, close)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.dirty = False

    def seek(self, pos: int) -> None:
        self.f.seek(pos)
        self.f.truncate(pos)

    def write(self, data: bytes | memoryview) -> None:
        self.f.write(data)
        self.dirty = True

    def sync(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(image_types=(IMAGE_TYPE,))


def _target_ready(target: Partition, node: NodeContext) -> bool:
    if node.extras.get("image_disk.spool") == "always":
        return False
    path = Path(target.path)
    return (path.is_file() or path.is_block_device()) and os.access(path, os.W_OK)


@hookimpl
def kubeos_fetch_image(spec: OSSpec, node: NodeContext, target: Partition) -> FetchedImage:
    policy = transfer_policy(spec, node)  # D1-D3, G3: refuse before any byte is fetched
    retry = RetryPolicy.from_extras(node.extras)
    sweep(node)  # under the node lock: spool files of a killed earlier fetch are stale
    sink: PartitionWriter | SpoolWriter
    spool: Path | None = None
    if _target_ready(target, node):
        sink = PartitionWriter(target, writeback=WRITEBACK, head_last=True)
        where = f"root {target.label} ({target.device or target.path})"
    else:
        # mkstemp: mode 0600, a name kubeos.node.scratch.SPOOL_FILE recognises
        fd, name = tempfile.mkstemp(prefix="kubeos-spool-", suffix=".img", dir=node.scratch())
        os.close(fd)
        spool = Path(name)
        sink = SpoolWriter(spool)
        where = f"spool file {spool}"
    log.info("downloading %s into %s", redacted(policy.url), where)
    try:
        result = download(policy, sink, target.size, node, retry)
        sink.sync()
    except BaseException as exc:
        sink.close()
        if spool is not None:
            with contextlib.suppress(FileNotFoundError):
                spool.unlink()
        elif sink.dirty:
            invalidate(target)
        if isinstance(exc, InstallError):
            raise ImageError(str(exc)) from exc
        raise
    sink.close()
    log.info("downloaded %d bytes, sha256:%s", result.size, result.sha256)
    return FetchedImage(
        path=spool or Path(target.path),
        size=result.size,
        digest=f"sha256:{result.sha256}",
        on_target=spool is None,
        sha256=result.sha256,
        temp_paths=[spool] if spool else [],
    )
