"""Crash-safe file replacement for the node's configuration files."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: str | bytes, default_mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically: temp file in the same dir, fsync, rename.

    Keeps the mode (and owner, when allowed) of an existing file, so a 0600 file stays
    0600. A crash leaves either the old or the new content, never a torn file.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"directory {parent} does not exist")
    raw = data.encode() if isinstance(data, str) else data
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode) if st else default_mode)
            if st is not None:
                with contextlib.suppress(PermissionError):
                    os.fchown(f.fileno(), st.st_uid, st.st_gid)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
