"""Remove what a killed fetch left in the node's scratch space (issue: resource leaks).

A fetch removes its own spool files and work trees on every path Python gets to run; a
SIGKILL or power cut skips that, and a node that keeps retrying would fill /persist.
`sweep()` runs at the start of each fetch, under the node lock (one root-changing
operation at a time), so every entry of ours found then is stale. Only names our code
creates are touched; anything else in the directory is left alone, and symlinks are
never followed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from kubeos.contracts import NodeContext

log = logging.getLogger(__name__)

#: tempfile's random part: 8 characters of [a-z0-9_].
_RAND = r"[a-z0-9_]{8}"
#: Regular files our fetches create: disk-image spool files and built partition images.
SPOOL_FILE = re.compile(rf"kubeos-spool-{_RAND}\.img")
ROOT_IMAGE = re.compile(r"kubeos-root-[0-9a-f]{16}\.ext4")
#: Work trees of container-image fetches (kubeos.rootfs.build.workspace).
WORK_DIR = re.compile(rf"kubeos-(?:docker|containerd)-{_RAND}")


def remove_tree(path: Path) -> bool:
    """rmtree that also gets through read-only directories an extracted image may hold;
    False (and a warning) if something could not be removed."""

    def retry_writable(func: Callable[..., object], p: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            func(p)

    shutil.rmtree(path, onerror=retry_writable)
    if path.exists():
        log.warning("could not remove scratch directory %s", path)
        return False
    return True


def _ours(name: str, mode: int) -> bool:
    if stat.S_ISREG(mode):
        return bool(SPOOL_FILE.fullmatch(name) or ROOT_IMAGE.fullmatch(name))
    if stat.S_ISDIR(mode):
        return bool(WORK_DIR.fullmatch(name))
    return False


def sweep(node: NodeContext) -> list[Path]:
    """Delete stale kubeos entries in `node.scratch()`; return what was removed.

    Call only while holding the node lock. Errors are logged, never raised: a leftover
    must not stop an upgrade.
    """
    removed: list[Path] = []
    try:
        scratch = node.scratch()
        entries = list(os.scandir(scratch))
    except OSError as exc:
        log.warning("cannot sweep the scratch space: %s", exc)
        return removed
    for entry in entries:
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
            if not _ours(entry.name, mode):
                continue
            path = Path(entry.path)
            if stat.S_ISDIR(mode):
                if not remove_tree(path):
                    continue
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot remove stale scratch entry %s: %s", entry.path, exc)
            continue
        log.info("removed %s, left behind by an interrupted operation", path)
        removed.append(path)
    return removed
