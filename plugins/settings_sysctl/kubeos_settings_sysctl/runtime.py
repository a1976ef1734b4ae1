"""kernel.sysctl: write the running kernel's parameters under /proc/sys (K1).

No `sysctl` command and no command line is built: `a.b.c` becomes the file `a/b/c` under
`NodeContext.proc_sys` and the value is written to it, so a CR value can never be read as
an option or a second assignment. The change is lost at reboot, as the spec says.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from kubeos.contracts import Change, NodeContext
from kubeos.errors import SettingError
from kubeos.models.settings import SettingItem, SettingsConfig
from kubeos_settings_sysctl.keys import key_segments, normalize_value

MODEL = "kernel.sysctl"
log = logging.getLogger(__name__)


def apply_runtime(config: SettingsConfig, node: NodeContext) -> list[Change]:
    """Apply the block in order; the first failure raises with what was applied (S6/C5)."""
    changes: list[Change] = []
    for item in config.contents:
        try:
            changes.append(_apply_item(item, node.proc_sys))
        except ValueError as exc:
            raise SettingError(MODEL, item.key, str(exc), applied=changes) from None
    return changes


def _apply_item(item: SettingItem, proc_sys: Path) -> Change:
    if item.is_delete:
        log.warning("%s: %s: delete is not supported; ignored (S4/K2)", MODEL, item.key)
        return Change(MODEL, item.key, "skipped", note="delete is not supported (S4/K2)")
    if not item.value or not item.value.strip():
        raise ValueError("value must not be empty (K2)")
    path = proc_sys.joinpath(*key_segments(item.key))
    if path.is_dir():
        raise ValueError(f"{item.key!r} is a group of kernel parameters ({path}), not one")
    if not path.exists():
        raise ValueError(f"no such kernel parameter {item.key!r} ({path} does not exist)")
    old = _read(path)
    if old is not None and normalize_value(old) == normalize_value(item.value):
        return Change(MODEL, item.key, "unchanged", old, item.value)
    _write(path, item.key, item.value)
    log.info("%s: %s = %r (was %r)", MODEL, item.key, item.value, old)
    return Change(MODEL, item.key, "set", old, item.value)


def _read(path: Path) -> str | None:
    """The current value; None for write-only parameters (e.g. vm.drop_caches)."""
    try:
        return path.read_text().strip()
    except PermissionError:
        return None


def _write(path: Path, key: str, value: str) -> None:
    # No O_CREAT: a missing parameter must fail, never become a new file.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"cannot open {path} for {key!r}: {exc.strerror}") from None
    try:
        data = value.encode()
        written = os.write(fd, data)
        if written != len(data):
            raise ValueError(f"kernel accepted only {written} of {len(data)} bytes for {key!r}")
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise ValueError(f"the kernel refused value {value!r} for {key!r}") from None
        raise ValueError(f"cannot write {value!r} to {key!r}: {exc.strerror}") from None
    finally:
        os.close(fd)
