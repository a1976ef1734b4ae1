"""Byte-range I/O on a root partition: bounded writes, fsync, read-back hashing, wiping.

A partition is a byte range (path, offset, size) of a device or a disk-image file, so a
write can never spill into the neighbouring partition: every write is checked against
the partition's end before it happens.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from types import TracebackType

from kubeos.contracts import NodeContext, Partition
from kubeos.errors import InstallError

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
#: Enough to destroy the signatures of ext2/3/4 (1 KiB), xfs (0) and btrfs (64 KiB).
WIPE_BYTES = 1024 * 1024


class PartitionWriter:
    """Sequential writer into one partition; refuses to pass the partition's end."""

    def __init__(self, part: Partition) -> None:
        self.part = part
        self.pos = 0
        #: True once any byte reached the partition (it then needs wiping on failure).
        self.dirty = False
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(part.path, flags)
        except OSError as exc:
            raise InstallError(
                f"cannot open root {part.label} ({part.path}) for writing: {exc.strerror}"
            ) from exc

    def seek(self, pos: int) -> None:
        if not 0 <= pos <= self.part.size:
            raise InstallError(f"position {pos} is outside root {self.part.label}")
        self.pos = pos

    def write(self, data: bytes | memoryview) -> None:
        end = self.pos + len(data)
        if end > self.part.size:
            raise InstallError(
                f"image is larger than root {self.part.label} ({self.part.size} bytes)"
            )
        view = memoryview(data)
        self.dirty = self.dirty or bool(view)
        while view:
            n = os.pwrite(self.fd, view, self.part.offset + self.pos)
            self.pos += n
            view = view[n:]

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
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
    with open(src, "rb", buffering=0) as f, PartitionWriter(part) as out:
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
