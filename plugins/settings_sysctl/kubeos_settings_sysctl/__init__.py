"""kubeos plugin providing the settings models kernel.sysctl and kernel.sysctl.persist.

kernel.sysctl writes the running kernel's parameters (K1, lost at reboot);
kernel.sysctl.persist edits a sysctl config file on the persist partition (P1-P3).
"""

from __future__ import annotations

from kubeos.contracts import Change, NodeContext, Provides
from kubeos.errors import Problem
from kubeos.hooks import hookimpl
from kubeos.models.settings import SettingsConfig
from kubeos_settings_sysctl.keys import validate_block
from kubeos_settings_sysctl.persist import MODEL as PERSIST
from kubeos_settings_sysctl.persist import apply_persist
from kubeos_settings_sysctl.runtime import MODEL as RUNTIME
from kubeos_settings_sysctl.runtime import apply_runtime

MODELS = (RUNTIME, PERSIST)


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(setting_models=MODELS)


@hookimpl
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem]:
    # Persist deletes compare key and value (S5), so they need the value too.
    return validate_block(model, config, value_needed_for_delete=model == PERSIST)


@hookimpl
def kubeos_apply_setting(model: str, config: SettingsConfig, node: NodeContext) -> list[Change]:
    if model == PERSIST:
        return apply_persist(config, node)
    return apply_runtime(config, node)
