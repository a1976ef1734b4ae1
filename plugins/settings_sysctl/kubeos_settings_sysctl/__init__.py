"""kubeos plugin providing settings models kernel.sysctl kernel.sysctl.persist."""

from __future__ import annotations

from kubeos.contracts import Change, NodeContext, Provides
from kubeos.errors import Problem
from kubeos.hooks import hookimpl
from kubeos.models.settings import SettingsConfig, key_value_rules

MODELS = ("kernel.sysctl", "kernel.sysctl.persist")


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(setting_models=MODELS)


@hookimpl
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem]:
    return key_value_rules(config)


@hookimpl
def kubeos_apply_setting(model: str, config: SettingsConfig, node: NodeContext) -> list[Change]:
    raise NotImplementedError(f"settings model {model!r}: applying is not built yet")
