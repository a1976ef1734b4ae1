"""kernel.sysctl.persist: edit a sysctl config file in place (P1-P3, S5).

The file keeps its comments, blank lines, order and every line kubeos does not own; a
setting's line is rewritten where it stands, or a `key = value` line is appended. The
result replaces the file atomically with its mode kept (kubeos.fsutil.atomic_write).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from kubeos.contracts import Change, NodeContext
from kubeos.errors import SettingError
from kubeos.fsutil import atomic_write
from kubeos.models.settings import SettingItem, SettingsConfig
from kubeos_settings_sysctl.keys import key_problem, normalize_value

MODEL = "kernel.sysctl.persist"
DEFAULT_PATH = "/etc/sysctl.conf"
log = logging.getLogger(__name__)

# `[-]key = value`: the value is the rest of the line (sysctl.conf has no inline comments).
_SETTING = re.compile(
    r"^(?P<lead>\s*-?\s*)(?P<key>[^\s=#;][^=]*?)(?P<sep>\s*=\s*)(?P<value>.*?)(?P<trail>\s*)$"
)


@dataclass
class ConfLine:
    """One line of the file; `key` is set for setting lines only (dotted form)."""

    text: str  # without the line ending
    ending: str
    key: str | None = None
    value: str = ""


def file_key(raw: str) -> str:
    """sysctl.d(5): when the first separator is '/', '/' separates and '.' is literal."""
    raw = raw.strip()
    first = min((i for i in (raw.find("."), raw.find("/")) if i >= 0), default=-1)
    if first >= 0 and raw[first] == "/":
        return raw.translate(str.maketrans("/.", "./"))
    return raw


def parse_conf(text: str) -> list[ConfLine]:
    lines: list[ConfLine] = []
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        line = ConfLine(body, raw[len(body) :])
        stripped = body.strip()
        if stripped and stripped[0] not in "#;":
            m = _SETTING.match(body)
            if m:
                line.key, line.value = file_key(m["key"]), m["value"]
        lines.append(line)
    return lines


def render_conf(lines: list[ConfLine]) -> str:
    return "".join(line.text + line.ending for line in lines)


def edit(lines: list[ConfLine], item: SettingItem) -> Change:
    """Apply one item to the parsed file (P3, S5); ValueError for an unusable item."""
    problem = key_problem(item.key)
    if problem is not None:
        raise ValueError(f"key {problem} (K2)")
    if not item.value or not item.value.strip():
        raise ValueError("value must not be empty (K2/S5)")
    value = item.value.strip()
    present = [line for line in lines if line.key == item.key]
    if item.is_delete:
        return _delete(lines, present, item.key, value)
    if present and all(normalize_value(p.value) == normalize_value(value) for p in present):
        return Change(MODEL, item.key, "unchanged", present[-1].value, value)
    if not present:
        if lines and not lines[-1].ending:
            lines[-1].ending = "\n"
        lines.append(ConfLine(f"{item.key} = {value}", "\n", item.key, value))
        return Change(MODEL, item.key, "added", None, value)
    old = present[-1].value  # the last one is what sysctl applies
    for line in present:  # every copy, so an earlier duplicate cannot disagree
        m = _SETTING.match(line.text)
        assert m is not None
        line.text = f"{m['lead']}{m['key']}{m['sep']}{value}{m['trail']}"
        line.value = value
    return Change(MODEL, item.key, "updated", old, value)


def _delete(lines: list[ConfLine], present: list[ConfLine], key: str, value: str) -> Change:
    if not present:
        log.warning("%s: %s is not in the file; nothing to delete", MODEL, key)
        return Change(MODEL, key, "unchanged", note="absent; nothing to delete")
    matching = [p for p in present if normalize_value(p.value) == normalize_value(value)]
    if not matching:
        current = present[-1].value
        log.warning("%s: %s is %r, not %r; not deleted (S5)", MODEL, key, current, value)
        return Change(
            MODEL, key, "unchanged", current, note=f"value is {current!r}; not deleted (S5)"
        )
    for line in matching:
        lines.remove(line)
    return Change(MODEL, key, "deleted", matching[-1].value)


def config_file(node: NodeContext, configpath: str | None) -> Path:
    """P2: the file under the host root; refuse links and paths leaving the host root."""
    try:
        path = node.host_path(configpath or DEFAULT_PATH)
    except ValueError as exc:
        raise SettingError(MODEL, "", f"configpath: {exc} (P2)") from None
    if not path.parent.is_dir():
        raise SettingError(
            MODEL,
            "",
            f"configpath {configpath or DEFAULT_PATH}: directory {path.parent} does"
            " not exist (P2: a new file is created only inside an existing directory)",
        )
    root = node.host_root.resolve()
    if not path.parent.resolve().is_relative_to(root):
        raise SettingError(MODEL, "", f"configpath: {path.parent} leads outside the host root")
    if path.is_symlink():
        raise SettingError(
            MODEL, "", f"configpath: {path} is a symbolic link; name the file it points to"
        )
    if path.exists() and not path.is_file():
        raise SettingError(MODEL, "", f"configpath: {path} is not a regular file")
    return path


def apply_persist(config: SettingsConfig, node: NodeContext) -> list[Change]:
    """Apply the block in order and write once; on a failure, write what went before (C5)."""
    path = config_file(node, config.configpath)
    try:
        original = path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        original = ""
    except OSError as exc:
        raise SettingError(MODEL, "", f"cannot read {path}: {exc.strerror}") from None
    lines = parse_conf(original)
    changes: list[Change] = []
    for item in config.contents:
        try:
            changes.append(edit(lines, item))
        except ValueError as exc:
            _save(path, original, lines)
            raise SettingError(MODEL, item.key, str(exc), applied=changes) from None
    _save(path, original, lines)
    return changes


def _save(path: Path, original: str, lines: list[ConfLine]) -> None:
    text = render_conf(lines)
    if text == original:
        return
    try:
        atomic_write(path, text.encode("utf-8", "surrogateescape"))
    except OSError as exc:
        # atomic: the old file is still in place, so nothing of this block was applied
        raise SettingError(
            MODEL, "", f"cannot write {path}, left as it was: {exc.strerror or exc}"
        ) from None
    log.info("%s: wrote %s", MODEL, path)
