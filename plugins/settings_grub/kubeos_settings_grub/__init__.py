"""kubeos plugin providing settings models grub.cmdline.current grub.cmdline.next."""

from __future__ import annotations

from kubeos.contracts import Change, NodeContext, Provides
from kubeos.errors import Problem
from kubeos.hooks import hookimpl
from kubeos.models.settings import SettingsConfig

MODELS = ("grub.cmdline.current", "grub.cmdline.next")


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(setting_models=MODELS)


@hookimpl
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem]:
    return []  # bare keys are allowed (B4); B5 comes with the settings issue


@hookimpl
def kubeos_apply_setting(model: str, config: SettingsConfig, node: NodeContext) -> list[Change]:
    raise NotImplementedError(f"settings model {model!r}: applying is not built yet")
