"""Honest stand-ins for what cannot happen in a test: the host's reboot."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeos.contracts import NodeContext
from kubeos.hooks import hookimpl
from kubeos.plugins import PluginHost


@dataclass(eq=False)  # pluggy keeps plugins in sets: identity hash
class RebootRecorder:
    """A kubeos_reboot plugin that records the request instead of rebooting the machine.

    Registered after the built-ins, so it wins (first-result hook, later registration
    first). `reboots` holds (node name, reason) for each request.
    """

    reboots: list[tuple[str, str]] = field(default_factory=list)

    @hookimpl
    def kubeos_reboot(self, node: NodeContext, reason: str) -> bool:
        self.reboots.append((node.node_name, reason))
        return True


def plugin_host(reboot: RebootRecorder | None = None) -> tuple[PluginHost, RebootRecorder]:
    """A fresh plugin host from the installed entry points, with reboots recorded."""
    host = PluginHost().load_entry_points()
    recorder = reboot or RebootRecorder()
    host.register(recorder, name="test_reboot_recorder")
    return host, recorder
