"""The boot switch: grubenv `saved_entry` picks the root the next boot starts from.

A KubeOS image boots UEFI grub whose grub.cfg has menu entries with ids 'A' and 'B' and
runs `load_env` + `set default=${saved_entry}`. Setting saved_entry (rather than the
one-shot next_entry) makes the choice stick across later reboots, which is what an
upgrade and a rollback (R3) both mean. The file is edited with grub2-editenv (openEuler)
or grub-editenv (Debian), which keep it the fixed 1 KiB block grub expects.
"""

from __future__ import annotations

import logging

from kubeos.contracts import NodeContext
from kubeos.errors import InstallError
from kubeos.node import grubcfg
from kubeos.runner import CommandError, run, which

log = logging.getLogger(__name__)
KEY = "saved_entry"


def editenv() -> str:
    tool = which("grub2-editenv", "grub-editenv")
    if tool is None:
        raise InstallError("neither grub2-editenv nor grub-editenv is installed")
    return tool


def read_env(node: NodeContext) -> dict[str, str]:
    """The grubenv's variables ({} when the file does not exist yet)."""
    if not node.grubenv.exists():
        return {}
    try:
        out = run([editenv(), node.grubenv, "list"], timeout=30).stdout.decode(errors="replace")
    except CommandError as exc:
        raise InstallError(f"cannot read {node.grubenv}: {exc}") from exc
    env: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env


def saved_entry(node: NodeContext) -> str | None:
    return read_env(node).get(KEY)


def menu_entry_ids(node: NodeContext) -> set[str] | None:
    """Titles and ids of grub.cfg's menu entries (grub matches either), or None when there
    is no grub.cfg to check against."""
    entries = grubcfg.read_entries(node)
    if entries is None:
        return None
    return {e.title for e in entries} | {e.entry_id for e in entries if e.entry_id}


def set_saved_entry(node: NodeContext, label: str) -> str:
    """Point the next boots at menu entry `label`; return the assignment written."""
    ids = menu_entry_ids(node)
    if ids is not None and label not in ids:
        raise InstallError(
            f"{node.grub_cfg} has no menu entry {label!r} (found: {', '.join(sorted(ids)) or '-'});"
            " switching would leave the node booting an unknown entry"
        )
    if ids is None:
        log.warning("%s not found: cannot check that entry %s exists", node.grub_cfg, label)
    if not node.grubenv.parent.is_dir():
        raise InstallError(f"grub directory {node.grubenv.parent} does not exist")
    assignment = f"{KEY}={label}"
    try:
        run([editenv(), node.grubenv, "set", assignment], timeout=30)
    except CommandError as exc:
        raise InstallError(f"cannot switch the boot entry: {exc}") from exc
    got = saved_entry(node)
    if got != label:
        raise InstallError(f"{node.grubenv}: {KEY} reads back {got!r}, expected {label!r}")
    log.info("boot entry switched: %s in %s", assignment, node.grubenv)
    return assignment
