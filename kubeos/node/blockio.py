"""Byte-range I/O on a root partition: bounded writes, fsync, read-back hashing, wiping.

A partition is a byte range (path, offset, size) of a device or a disk-image file, so a
write can never spill into the neighbouring partition: every write is checked against
the partition's end before it happens.

Write order (R3): an image write first zeroes the partition's first MiB (the old
filesystem's signature), keeps the image's first MiB in memory and writes it only after
everything else is on the medium. A write cut short by SIGKILL or a power cut therefore
leaves a partition without any filesystem signature, which nothing mounts, boots or
rolls back to, even when `invalidate()` never got to run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import queue
import threading
from pathlib import Path
from types import TracebackType

from kubeos.contracts import NodeContext, Partition
from kubeos.errors import InstallError

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
#: Background flush window of streamed writes (see PartitionWriter).
WRITEBACK = 32 * 1024 * 1024
#: Enough to destroy the signatures of ext2/3/4 (1 KiB), xfs (0) and btrfs (64 KiB).
WIPE_BYTES = 1024 * 1024
#: The image bytes held back until the rest is on the medium (see the module docstring).
HEAD_BYTES = WIPE_BYTES


def _open_for_writing(part: Partition) -> int:
    """Open the partition's bytes for writing; a partition device is opened exclusively.

    O_EXCL on a block device fails with EBUSY while it is mounted or claimed, so an
    upgrade can never write under a mounted filesystem. A disk-image file, or a whole
    disk addressed by offset (no partition nodes), cannot be claimed that way.
    """
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    path = Path(part.path)
    if part.offset == 0 and path.is_block_device():
        flags |= os.O_EXCL
    try:
        return os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise InstallError(
                f"root {part.label} ({part.device or path}) is in use (mounted?):"
                " refusing to write to it"
            ) from exc
        raise InstallError(
            f"cannot open root {part.label} ({path}) for writing: {exc.strerror}"
        ) from exc


class _Writeback(threading.Thread):
    """Flushes written ranges to the medium while the writer goes on, then drops them
    from the page cache: the disk works during the download instead of after it, and a
    multi-GiB image does not evict the node's cache. Bounded: the writer waits when it
    is `depth` windows ahead (the disk is the slower side).
    """

    def __init__(self, fd: int, offset: int, depth: int = 2) -> None:
        super().__init__(name="kubeos-writeback", daemon=True)
        self.fd, self.offset = fd, offset
        self.todo: queue.Queue[int | None] = queue.Queue(maxsize=depth)
        self.flushed = 0
        self.error: OSError | None = None

    def run(self) -> None:
        while True:
            hi = self.todo.get()
            try:
                if hi is None:
                    return
                if self.error is None and hi > self.flushed:
                    os.fdatasync(self.fd)
                    with contextlib.suppress(OSError, AttributeError):
                        os.posix_fadvise(
                            self.fd,
                            self.offset + self.flushed,
                            hi - self.flushed,
                            os.POSIX_FADV_DONTNEED,
                        )
                    self.flushed = hi
            except OSError as exc:
                self.error = exc
            finally:
                self.todo.task_done()

    def drain(self) -> None:
        """Wait until every queued range is on the medium; raise its I/O error if any."""
        self.todo.join()
        if self.error is not None:
            raise InstallError(f"writing the root partition failed: {self.error}")


class PartitionWriter:
    """Sequential writer into one partition; refuses to pass the partition's end.

    With `writeback` (a window in bytes) every window written is flushed and dropped
    from the cache in the background; `sync()` then only has the last window left.

    With `head_last` (image writes), the first write zeroes the partition's first
    HEAD_BYTES and makes that durable; bytes addressed there stay in memory until
    `sync()`, which writes them after everything else is on the medium. Until then the
    partition carries no filesystem signature. Nothing is touched before the first write,
    so a download refused up front leaves the partition (the rollback root) as it was.
    """

    def __init__(self, part: Partition, writeback: int = 0, head_last: bool = False) -> None:
        self.part = part
        self.pos = 0
        #: True once any byte reached the partition (it then needs wiping on failure).
        self.dirty = False
        self.fd = _open_for_writing(part)
        self.window = writeback
        self._queued = 0
        self._head_size = min(HEAD_BYTES, part.size) if head_last else 0
        #: image bytes for [0, _head_size), written last; None when there is nothing held.
        self._head: bytearray | None = None
        self._wb: _Writeback | None = None
        if writeback > 0:
            self._wb = _Writeback(self.fd, part.offset)
            self._wb.start()

    def _hold_head(self) -> bytearray:
        """Zero the on-medium head (durably) before the first image byte lands anywhere."""
        if self._head is None:
            self._pwrite_all(memoryview(bytes(self._head_size)), 0)
            os.fdatasync(self.fd)
            self._head = bytearray()
        return self._head

    def _pwrite_all(self, view: memoryview, pos: int) -> None:
        while view:
            n = os.pwrite(self.fd, view, self.part.offset + pos)
            pos += n
            view = view[n:]

    def seek(self, pos: int) -> None:
        """Move the write position (a restarted download seeks back to 0)."""
        if not 0 <= pos <= self.part.size:
            raise InstallError(f"position {pos} is outside root {self.part.label}")
        if self._wb is not None:
            self._wb.drain()
            self._wb.flushed = min(self._wb.flushed, pos)
            self._queued = min(self._queued, pos)
        if self._head is not None and pos < len(self._head):
            del self._head[pos:]
        self.pos = pos

    def write(self, data: bytes | memoryview) -> None:
        end = self.pos + len(data)
        if end > self.part.size:
            raise InstallError(
                f"image is larger than root {self.part.label} ({self.part.size} bytes)"
            )
        view = memoryview(data)
        if not view:
            return
        self.dirty = True
        if self.pos < self._head_size:
            head = self._hold_head()
            take = min(len(view), self._head_size - self.pos)
            if len(head) < self.pos:  # a seek forward inside the head: the gap reads zero
                head.extend(bytes(self.pos - len(head)))
            head[self.pos : self.pos + take] = view[:take]
            self.pos += take
            view = view[take:]
        elif self._head_size:
            self._hold_head()
        self._pwrite_all(view, self.pos)
        self.pos += len(view)
        if self._wb is not None and self.pos - self._queued >= self.window:
            if self._wb.error is not None:
                self._wb.drain()
            self._wb.todo.put(self.pos)  # blocks while the disk is `depth` windows behind
            self._queued = self.pos

    def sync(self) -> None:
        """Everything written is on the medium (and, with writeback, out of the cache).

        A held head is written last, after the rest is durable, then synced itself.
        """
        if self._wb is not None:
            self._wb.todo.put(self.pos)
            self._wb.drain()
        os.fsync(self.fd)
        if self._head:
            self._pwrite_all(memoryview(self._head), 0)
            os.fsync(self.fd)
            log.debug("root %s: wrote its first %d bytes last", self.part.label, len(self._head))

    def close(self) -> None:
        if self._wb is not None:
            self._wb.todo.put(None)
            self._wb.join()
            self._wb = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def drop_cache(path: Path, offset: int, size: int) -> None:
    """Ask the kernel to forget cached pages so a read-back reads the medium (best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, offset, size, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def sha256_range(
    path: Path, offset: int, size: int, node: NodeContext | None = None, phase: str = "verify"
) -> str:
    """SHA-256 hex of `size` bytes of `path` from `offset`; short files are an error."""
    h = hashlib.sha256()
    done = 0
    buf = bytearray(CHUNK)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        while done < size:
            want = min(CHUNK, size - done)
            n = f.readinto(memoryview(buf)[:want])
            if not n:
                raise InstallError(f"{path}: only {done} of {size} bytes could be read back")
            h.update(memoryview(buf)[:n])
            done += n
            if node is not None:
                node.report(phase, done, size)
    return h.hexdigest()


def copy_into(src: Path, size: int, part: Partition, node: NodeContext | None = None) -> str:
    """Copy `size` bytes of `src` to the start of `part`; return their SHA-256 hex."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    done = 0
    with (
        open(src, "rb", buffering=0) as f,
        PartitionWriter(part, writeback=WRITEBACK, head_last=True) as out,
    ):
        while done < size:
            n = f.readinto(memoryview(buf)[: min(CHUNK, size - done)])
            if not n:
                raise InstallError(f"{src}: ended after {done} of {size} bytes")
            chunk = memoryview(buf)[:n]
            h.update(chunk)
            out.write(chunk)
            done += n
            if node is not None:
                node.report("write", done, size)
        out.sync()
    return h.hexdigest()


def invalidate(part: Partition) -> None:
    """Make a half-written root unrecognisable (no filesystem signature) so nothing boots,
    mounts or rolls back to it. Errors are logged, never raised: this runs on failure paths.
    """
    n = min(WIPE_BYTES, part.size)
    try:
        with PartitionWriter(part) as out:
            out.write(bytes(n))
            out.sync()
        log.warning("root %s (%s) wiped: it held an incomplete image", part.label, part.device)
    except (OSError, InstallError) as exc:
        log.error("could not wipe incomplete root %s: %s", part.label, exc)
