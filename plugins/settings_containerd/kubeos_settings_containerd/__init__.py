"""kubeos add-on: the `container.containerd` settings model (containerd's config.toml).

A key is a TOML dotted key, so quoting follows TOML itself:
`plugins."io.containerd.grpc.v1.cri".sandbox_image`. A value is a TOML value (`10`, `true`,
`["a"]`, `"text"`); text that is not a TOML value is taken as a string, and an existing
string stays a string, so `registry/pause:3.9` needs no quotes. Lists append the items not
yet present; missing tables are created; `delete` removes the key (S5 when a value is
given). tomlkit keeps comments and layout.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from kubeos.contracts import Change, NodeContext, Provides
from kubeos.errors import Problem, SettingError
from kubeos.fsutil import atomic_write
from kubeos.hooks import hookimpl
from kubeos.models.settings import SettingItem, SettingsConfig

MODEL = "container.containerd"
DEFAULT_PATH = "/etc/containerd/config.toml"
log = logging.getLogger(__name__)


def key_segments(key: str) -> list[str]:
    """Parse `key` with TOML's own dotted-key grammar; ValueError if it is not one."""
    try:
        table: Any = tomlkit.parse(f"{key} = 0\n").unwrap()
    except TOMLKitError as exc:
        raise ValueError(f"not a TOML dotted key: {exc}") from None
    segments: list[str] = []
    while isinstance(table, dict):
        if len(table) != 1:
            raise ValueError("not a single dotted key")
        ((name, table),) = table.items()
        segments.append(name)
    return segments


def parse_value(text: str, like: Any = None) -> Any:
    """The TOML value `text` stands for, keeping the type of an existing string value."""
    if isinstance(like, str):
        return text
    try:
        return tomlkit.parse(f"v = {text}\n").unwrap()["v"]
    except (TOMLKitError, KeyError):
        return text


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(setting_models=(MODEL,))


@hookimpl
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem]:
    problems = []
    for i, item in enumerate(config.contents):
        try:
            key_segments(item.key)
        except ValueError as exc:
            problems.append(Problem(f"contents[{i}].key", "CT1", f"{item.key!r}: {exc}"))
        if item.value is None and not item.is_delete:
            problems.append(Problem(f"contents[{i}].value", "S3", "must not be empty"))
    return problems


@hookimpl
def kubeos_apply_setting(model: str, config: SettingsConfig, node: NodeContext) -> list[Change]:
    path = node.host_path(config.configpath or DEFAULT_PATH)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise SettingError(model, "", f"directory {path.parent} does not exist") from None
        text = ""
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise SettingError(model, "", f"{path} is not valid TOML, left untouched: {exc}") from None
    changes = []
    for item in config.contents:
        try:
            changes.append(_apply_item(doc, item))
        except (ValueError, TypeError) as exc:
            raise SettingError(model, item.key, str(exc)) from None  # nothing written yet
    rendered = tomlkit.dumps(doc)
    if rendered != text:
        atomic_write(path, rendered)
    return changes


def _apply_item(doc: MutableMapping[str, Any], item: SettingItem) -> Change:
    *tables, leaf = key_segments(item.key)
    table: MutableMapping[str, Any] = doc
    for name in tables:
        if name not in table:
            if item.is_delete:
                return Change(MODEL, item.key, "unchanged", note="absent; nothing to delete")
            table[name] = tomlkit.table()
        child = table[name]
        if not isinstance(child, MutableMapping):
            raise ValueError(f"{name!r} is a {type(child).__name__}, not a table")
        table = child
    present = leaf in table
    old = table[leaf].unwrap() if present and hasattr(table[leaf], "unwrap") else table.get(leaf)
    if item.is_delete:
        if not present:
            log.warning("%s: %s is absent; nothing to delete", MODEL, item.key)
            return Change(MODEL, item.key, "unchanged", note="absent; nothing to delete")
        if item.value is not None and parse_value(item.value, old) != old:
            log.warning("%s: %s is %r, not %r; not deleted (S5)", MODEL, item.key, old, item.value)
            return Change(MODEL, item.key, "unchanged", note="value differs; not deleted (S5)")
        del table[leaf]
        return Change(MODEL, item.key, "deleted", old=str(old))
    assert item.value is not None
    new = parse_value(item.value, old)
    if isinstance(old, list) and isinstance(new, list):
        added = [v for v in new if v not in old]
        for v in added:
            table[leaf].append(v)
        return Change(
            MODEL, item.key, "updated" if added else "unchanged", str(old), str(old + added)
        )
    if present and old == new:
        return Change(MODEL, item.key, "unchanged")
    table[leaf] = new
    return Change(MODEL, item.key, "updated" if present else "added", _s(old), str(new))


def _s(v: Any) -> str | None:
    return None if v is None else str(v)
