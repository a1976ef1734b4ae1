"""Kernel command-line parameters on a grub `linux` line: syntax (B4), edits (B5, B6, S5).

A parameter is `key=value` (key = text before the first '=', value = the rest, which may
hold more '=': `root=UUID=...`) or a bare `key`. The edits refuse to turn one form into
the other (B5) instead of guessing what the admin meant.
"""

from __future__ import annotations

import logging
import re

from kubeos.contracts import Change
from kubeos.errors import Problem
from kubeos.models.settings import SettingItem, SettingsConfig

log = logging.getLogger(__name__)

# Characters grub's script parser or the kernel's command-line splitter would act on.
_UNSAFE = re.compile(r"""[\s"'`$\\;{}|&<>#]""")
#: One parameter as grub and the kernel split them: quoted parts may hold spaces.
TOKEN = re.compile(r"""(?:[^\s"']+|"[^"]*"|'[^']*')+""")


class ParamError(ValueError):
    """An edit the rules refuse; the message names the rule."""


def split_param(token: str) -> tuple[str, str | None]:
    """`key=value` -> (key, value); bare `key` -> (key, None) (B4)."""
    key, sep, value = token.partition("=")
    return key, (value if sep else None)


def tokenize(text: str) -> list[str]:
    """Split a command line; ValueError when quotes do not pair up."""
    tokens = TOKEN.findall(text)
    if "".join(tokens) != "".join(text.split()):
        raise ValueError(f"unbalanced quotes in {text.strip()!r}")
    return tokens


def item_problems(i: int, item: SettingItem) -> list[Problem]:
    """B4 syntax of one item: what could not be written on a `linux` line as one parameter."""
    problems = []
    if _UNSAFE.search(item.key):
        problems.append(
            Problem(
                f"contents[{i}].key",
                "B4",
                f"{item.key!r} must not contain whitespace, quotes or grub script characters",
            )
        )
    if item.value is not None:
        if item.value == "":
            problems.append(
                Problem(
                    f"contents[{i}].value",
                    "B4",
                    f"must not be empty for key {item.key!r}; omit value for a bare parameter",
                )
            )
        elif _UNSAFE.search(item.value):
            problems.append(
                Problem(
                    f"contents[{i}].value",
                    "B4",
                    f"{item.value!r} must not contain whitespace, quotes or grub script characters",
                )
            )
    return problems


def check_block(config: SettingsConfig) -> list[tuple[int, Problem]]:
    """B4 for every item, and B5: one key given both bare and as key=value in one config.

    Each problem comes with the index of the item it is about.
    """
    problems: list[tuple[int, Problem]] = []
    first_form: dict[str, tuple[int, bool]] = {}
    for i, item in enumerate(config.contents):
        problems += [(i, p) for p in item_problems(i, item)]
        bare = item.value is None
        if item.key not in first_form:
            first_form[item.key] = (i, bare)
            continue
        j, was_bare = first_form[item.key]
        if was_bare != bare:
            message = (
                f"key {item.key!r} appears as {_form(was_bare)} in contents[{j}] and as"
                f" {_form(bare)} here: switching between a bare key and key=value takes"
                " two configs (delete the old form first, add the new one in a later config)"
            )
            problems.append((i, Problem(f"contents[{i}].value", "B5", message)))
    return problems


def block_problems(config: SettingsConfig) -> list[Problem]:
    return [p for _, p in check_block(config)]


def _form(bare: bool) -> str:
    return "a bare key" if bare else "key=value"


def edit(params: list[str], item: SettingItem, model: str, entry: str) -> Change:
    """Apply one item to the parameter list in place; ParamError when a rule refuses it."""
    want = item.key if item.value is None else f"{item.key}={item.value}"
    where = [i for i, p in enumerate(params) if split_param(p)[0] == item.key]
    note = f"entry {entry}"
    if item.is_delete:
        return _delete(params, item, where, want, model, note)
    wrong_form = [
        params[i] for i in where if (split_param(params[i])[1] is None) != (item.value is None)
    ]
    if wrong_form:
        raise ParamError(
            f"{wrong_form[0]!r} is on entry {entry}'s linux line; turning it into {want!r} in"
            f" one update is not supported (B5): delete {wrong_form[0]!r} first, then add"
            f" {want!r} in a later config"
        )
    if want in params:
        return Change(model, item.key, "unchanged", want, want, note)
    if not where:
        params.append(want)
        return Change(model, item.key, "added", None, want, note)
    if len(where) > 1:
        copies = ", ".join(repr(params[i]) for i in where)
        raise ParamError(
            f"key {item.key!r} appears {len(where)} times on entry {entry}'s linux line"
            f" ({copies}); delete the copies you do not want first (S5) rather than have"
            " kubeos guess which one to change"
        )
    old = params[where[0]]
    params[where[0]] = want
    return Change(model, item.key, "updated", old, want, note)


def _delete(
    params: list[str], item: SettingItem, where: list[int], want: str, model: str, note: str
) -> Change:
    """B6/S5: only an exact key=value (or the bare key) is removed."""
    if not where:
        log.warning("%s: %s is not on the linux line (%s); nothing to delete", model, want, note)
        return Change(model, item.key, "unchanged", note=f"{note}: absent; nothing to delete")
    exact = [i for i in where if params[i] == want]
    if not exact:
        present = " ".join(params[i] for i in where)
        log.warning("%s: %s present as %r, not %r; not deleted (S5/B6)", model, note, present, want)
        return Change(
            model,
            item.key,
            "unchanged",
            present,
            note=f"{note}: present as {present!r}, not {want!r}; not deleted (S5/B6)",
        )
    for i in reversed(exact):
        del params[i]
    return Change(model, item.key, "deleted", want, None, note)
