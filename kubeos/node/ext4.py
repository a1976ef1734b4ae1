"""Look inside an ext4 root filesystem without mounting it.

The agent must decide whether a partition holds a bootable root (R3) and which version it
carries while the partition is not mounted (it is the inactive one), so it reads the
superblock directly and uses `debugfs` for files. Partitions are addressed by byte offset
so the same code works on a partition device (offset 0) and on a disk-image file.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

from kubeos.contracts import Partition
from kubeos.errors import KubeosError
from kubeos.node.osrelease import MAX_OS_RELEASE, pretty_name
from kubeos.runner import CommandError, run

log = logging.getLogger(__name__)

SUPERBLOCK_OFFSET = 1024
_MAGIC_AT = 0x38
_UUID_AT = 0x68
_BLOCKS_LO_AT = 0x04
_LOG_BLOCK_SIZE_AT = 0x18
_INCOMPAT_AT = 0x60
_BLOCKS_HI_AT = 0x150
_INCOMPAT_64BIT = 0x80
EXT_MAGIC = b"\x53\xef"  # 0xEF53 little-endian
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")


class RootFsError(KubeosError):
    """A partition does not hold a readable root filesystem."""


def read_superblock(path: Path, offset: int = 0) -> bytes | None:
    """The 1 KiB ext2/3/4 superblock at `offset`, or None if there is none (no magic)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset + SUPERBLOCK_OFFSET)
            sb = f.read(1024)
    except OSError as exc:
        log.debug("cannot read superblock of %s at %d: %s", path, offset, exc)
        return None
    if len(sb) < 1024 or sb[_MAGIC_AT : _MAGIC_AT + 2] != EXT_MAGIC:
        return None
    return sb


def fs_uuid(path: Path, offset: int = 0) -> str | None:
    """The filesystem UUID (what `root=UUID=` names), lower case; None without ext fs."""
    sb = read_superblock(path, offset)
    if sb is None:
        return None
    return str(uuid.UUID(bytes=sb[_UUID_AT : _UUID_AT + 16]))


def fs_bytes(path: Path, offset: int = 0) -> int | None:
    """Bytes the filesystem at `offset` claims (s_blocks_count x block size); None without one.

    An image can be smaller than the partition yet describe a larger filesystem (truncated
    or built for another disk): the kernel would then read past the partition end.
    """
    sb = read_superblock(path, offset)
    if sb is None:
        return None
    blocks = int.from_bytes(sb[_BLOCKS_LO_AT : _BLOCKS_LO_AT + 4], "little")
    incompat = int.from_bytes(sb[_INCOMPAT_AT : _INCOMPAT_AT + 4], "little")
    if incompat & _INCOMPAT_64BIT:
        blocks |= int.from_bytes(sb[_BLOCKS_HI_AT : _BLOCKS_HI_AT + 4], "little") << 32
    log_size = int.from_bytes(sb[_LOG_BLOCK_SIZE_AT : _LOG_BLOCK_SIZE_AT + 4], "little")
    if log_size > 6:  # ext4 blocks are 1 KiB .. 64 KiB
        raise RootFsError(f"{path}: superblock block size 2^{10 + log_size} is not ext4's")
    return blocks * (1024 << log_size)


def _debugfs_target(part: Partition) -> str:
    """`debugfs` opens a byte range of a file through its unix-io `?offset=` option."""
    name = str(part.path)
    if "?" in name:
        raise RootFsError(f"{name}: path must not contain '?' (debugfs io options)")
    return f"{name}?offset={part.offset}" if part.offset else name


def _debugfs(part: Partition, request: str) -> str:
    """Run one debugfs request read-only; debugfs exits 0 on errors, so read stderr too."""
    try:
        proc = run(["debugfs", "-R", request, _debugfs_target(part)], timeout=60)
    except CommandError as exc:
        raise RootFsError(f"partition {part.label}: {exc}") from exc
    errors = [
        line
        for line in proc.stderr.decode(errors="replace").splitlines()
        if line.strip() and not line.startswith("debugfs ")
    ]
    if errors:
        raise RootFsError(f"partition {part.label}: debugfs {request!r}: {errors[0].strip()}")
    return proc.stdout.decode(errors="replace")


def read_small_file(part: Partition, path: str, limit: int = MAX_OS_RELEASE) -> str:
    """A regular file of at most `limit` bytes from the filesystem on `part`."""
    if read_superblock(part.path, part.offset) is None:
        raise RootFsError(f"partition {part.label} ({part.path}) has no ext2/3/4 filesystem")
    stat = _debugfs(part, f"stat {path}")
    kind = re.search(r"Type:\s*(\S+)", stat)
    size = re.search(r"Size:\s*(\d+)", stat)
    if not kind or kind.group(1) != "regular":
        raise RootFsError(
            f"partition {part.label}: {path} is not a regular file"
            f" ({kind.group(1) if kind else 'unknown type'})"
        )
    if not size or int(size.group(1)) > limit:
        raise RootFsError(f"partition {part.label}: {path} is larger than {limit} bytes")
    return _debugfs(part, f"cat {path}")


def read_os_release(part: Partition) -> str:
    """os-release text of the root on `part` (/etc first, then /usr/lib as os-release(5))."""
    first: RootFsError | None = None
    for candidate in OS_RELEASE_PATHS:
        try:
            return read_small_file(part, candidate)
        except RootFsError as exc:
            first = first or exc
            if read_superblock(part.path, part.offset) is None:
                break
    assert first is not None
    raise first


def root_version(part: Partition) -> str:
    """PRETTY_NAME of the root on `part`; RootFsError if it is not a readable root fs.

    A partition passing this is what a rollback may switch to (R3): it has an ext
    filesystem and an os-release naming a version.
    """
    name = pretty_name(read_os_release(part))
    if not name:
        raise RootFsError(f"partition {part.label}: os-release has no PRETTY_NAME")
    return name
