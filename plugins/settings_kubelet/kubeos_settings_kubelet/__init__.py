"""kubeos add-on: the `kubernetes.kubelet` settings model (the kubelet's config YAML).

A key is a dotted path into the document; a segment holding dots is quoted
(`evictionHard."memory.available"`). A value is YAML text: `10`, `true`, `[a, b]`,
`{x: 1}`. Setting a list appends the items not yet present; a missing path is created;
`delete` removes the key (only when `value`, if given, equals the present one: S5).
Comments and layout survive through ruamel.yaml's round-trip mode.
"""

from __future__ import annotations

import io
import logging
from collections.abc import MutableMapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from kubeos.contracts import Change, NodeContext, Provides
from kubeos.errors import Problem, SettingError
from kubeos.fsutil import atomic_write
from kubeos.hooks import hookimpl
from kubeos.models.settings import SettingItem, SettingsConfig

MODEL = "kubernetes.kubelet"
DEFAULT_PATH = "/var/lib/kubelet/config.yaml"
log = logging.getLogger(__name__)


def split_key(key: str) -> list[str]:
    """`a."b.c".d` -> ["a", "b.c", "d"]; ValueError on unbalanced quotes or empty segments."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in key:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise ValueError("unbalanced double quote")
    parts.append("".join(current))
    if any(not p for p in parts):
        raise ValueError("empty path segment")
    return parts


def _yaml() -> YAML:
    y = YAML()  # round-trip: keeps comments, key order and quoting
    y.preserve_quotes = True
    return y


def parse_value(text: str) -> Any:
    try:
        return YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise ValueError(f"value is not YAML: {exc}") from None


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(setting_models=(MODEL,))


@hookimpl
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem]:
    problems = []
    for i, item in enumerate(config.contents):
        try:
            split_key(item.key)
        except ValueError as exc:
            problems.append(Problem(f"contents[{i}].key", "KL1", f"{item.key!r}: {exc}"))
        if item.value is None and not item.is_delete:
            problems.append(Problem(f"contents[{i}].value", "S3", "must not be empty"))
        elif item.value is not None:
            try:
                parse_value(item.value)
            except ValueError as exc:
                problems.append(Problem(f"contents[{i}].value", "KL2", str(exc)))
    return problems


@hookimpl
def kubeos_apply_setting(model: str, config: SettingsConfig, node: NodeContext) -> list[Change]:
    path = node.host_path(config.configpath or DEFAULT_PATH)
    y = _yaml()
    try:
        text = path.read_text()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise SettingError(model, "", f"directory {path.parent} does not exist") from None
        text = ""
    try:
        doc = y.load(text) if text.strip() else CommentedMap()
    except YAMLError as exc:
        raise SettingError(model, "", f"{path} is not valid YAML, left untouched: {exc}") from None
    if not isinstance(doc, MutableMapping):
        raise SettingError(model, "", f"{path} is not a YAML mapping, left untouched")
    changes: list[Change] = []
    for item in config.contents:
        try:
            changes.append(_apply_item(doc, item))
        except (ValueError, TypeError) as exc:
            raise SettingError(model, item.key, str(exc)) from None  # nothing written yet
    out = io.StringIO()
    y.dump(doc, out)
    if out.getvalue() != text:
        atomic_write(path, out.getvalue())
    return changes


def _apply_item(doc: MutableMapping[str, Any], item: SettingItem) -> Change:
    *parents, leaf = split_key(item.key)
    node: MutableMapping[str, Any] = doc
    for seg in parents:
        child = node.get(seg)
        if child is None:
            if item.is_delete:
                return Change(MODEL, item.key, "unchanged", note="absent; nothing to delete")
            child = node[seg] = CommentedMap()
        if not isinstance(child, MutableMapping):
            raise ValueError(f"{seg!r} holds a {type(child).__name__}, not a mapping")
        node = child
    old = node.get(leaf)
    if item.is_delete:
        if leaf not in node:
            log.warning("%s: %s is absent; nothing to delete", MODEL, item.key)
            return Change(MODEL, item.key, "unchanged", note="absent; nothing to delete")
        if item.value is not None and parse_value(item.value) != old:
            log.warning("%s: %s is %r, not %r; not deleted (S5)", MODEL, item.key, old, item.value)
            return Change(MODEL, item.key, "unchanged", note="value differs; not deleted (S5)")
        del node[leaf]
        return Change(MODEL, item.key, "deleted", old=str(old))
    assert item.value is not None
    new = parse_value(item.value)
    if isinstance(old, list) and isinstance(new, list):
        added = [v for v in new if v not in old]
        old_text = str(list(old))
        old.extend(added)
        return Change(
            MODEL, item.key, "updated" if added else "unchanged", old_text, str(list(old))
        )
    if isinstance(new, list):
        new = CommentedSeq(new)
    if old == new:
        return Change(MODEL, item.key, "unchanged")
    node[leaf] = new
    return Change(MODEL, item.key, "added" if old is None else "updated", _s(old), _s(new))


def _s(v: Any) -> str | None:
    return None if v is None else str(v)
