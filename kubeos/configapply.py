"""Apply a sysconfigs/upgradeconfigs block on one node: in order, stop at the first failure.

S6/C5: settings before the failure stay applied and are reported; the failure names the
model, the key and the reason. Each block is handed to the plugin owning its model.
"""

from __future__ import annotations

import logging

from kubeos.contracts import NodeContext
from kubeos.errors import KubeosError, SettingError
from kubeos.models.settings import ApplyReport, SysConfigs
from kubeos.plugins import PluginHost

log = logging.getLogger(__name__)


def apply_sysconfigs(host: PluginHost, sysconfigs: SysConfigs, node: NodeContext) -> ApplyReport:
    report = ApplyReport()
    for config in sysconfigs.configs:
        try:
            owner = host.model_owner(config.model)
            caller = host.owner_hook("kubeos_apply_setting", owner)
            changes = caller(model=config.model, config=config, node=node) or []
        except SettingError as exc:
            report.changes.extend(exc.applied)
            report.failed = exc
        except KubeosError as exc:
            key = config.contents[0].key if config.contents else ""
            report.failed = SettingError(config.model, key, str(exc))
        except (OSError, ValueError) as exc:
            report.failed = SettingError(config.model, "", f"{type(exc).__name__}: {exc}")
        if report.failed is not None:
            log.error("config version %s stopped: %s", sysconfigs.version, report.failed)
            return report
        report.changes.extend(changes)
        for change in changes:
            log.info("applied %s", change)
    return report
