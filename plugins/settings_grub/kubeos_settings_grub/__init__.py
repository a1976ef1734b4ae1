"""kubeos plugin providing the settings models grub.cmdline.current and grub.cmdline.next.

They edit the kernel parameters on the `linux` line of the grub.cfg menu entry of the
partition the node runs from (current) or of the other one (next) (B1-B6).
"""

from __future__ import annotations

import logging
from pathlib import Path

from kubeos.contracts import Change, NodeContext, Provides
from kubeos.errors import Problem, SettingError
from kubeos.fsutil import atomic_write
from kubeos.hooks import hookimpl
from kubeos.models.settings import SettingsConfig
from kubeos_settings_grub.current import CurrentUnknown, current_label, other
from kubeos_settings_grub.grubcfg import GrubCfgError, LinuxLine, ab_entries
from kubeos_settings_grub.params import ParamError, block_problems, check_block, edit

CURRENT = "grub.cmdline.current"
NEXT = "grub.cmdline.next"
MODELS = (CURRENT, NEXT)
log = logging.getLogger(__name__)


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(setting_models=MODELS)


@hookimpl
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem]:
    return block_problems(config)


@hookimpl
def kubeos_apply_setting(model: str, config: SettingsConfig, node: NodeContext) -> list[Change]:
    problems = check_block(config)  # the hook may be reached without validation
    if problems:
        index, first = problems[0]
        raise SettingError(model, config.contents[index].key, str(first))
    path = node.grub_cfg
    try:
        original = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise SettingError(model, "", f"cannot read grub.cfg {path}: {exc.strerror}") from None
    lines = original.splitlines(keepends=True)
    try:
        entries = ab_entries(lines)
        label = current_label(node, entries)
    except (GrubCfgError, CurrentUnknown) as exc:
        raise SettingError(model, "", f"{path}: {exc}") from None
    if model == NEXT:
        label = other(label)
    linux = entries[label]
    before = list(linux.params)
    changes: list[Change] = []
    for item in config.contents:
        try:
            changes.append(edit(linux.params, item, model, label))
        except ParamError as exc:
            _save(model, path, lines, linux, before)
            raise SettingError(model, item.key, str(exc), applied=changes) from None
    _save(model, path, lines, linux, before)
    return changes


def _save(model: str, path: Path, lines: list[str], linux: LinuxLine, before: list[str]) -> None:
    """Rewrite only the edited `linux` line, keeping its line ending; atomic, mode kept."""
    if linux.params == before:
        return
    old = lines[linux.index]
    lines[linux.index] = linux.render() + old[len(old.rstrip("\r\n")) :]
    try:
        atomic_write(path, "".join(lines).encode("utf-8", "surrogateescape"))
    except OSError as exc:
        # atomic: grub.cfg is still the old one, so nothing of this block was applied
        raise SettingError(
            model, "", f"cannot write {path}, left as it was: {exc.strerror or exc}"
        ) from None
    log.info("grub: rewrote line %d of %s: %s", linux.index + 1, path, linux.render().strip())
