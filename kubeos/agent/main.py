"""Start the agent in this process: API client, signal handling, the loop."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from kubeos.agent.loop import Agent, agent_api_client
from kubeos.agent.operations import AgentSettings
from kubeos.plugins import PluginHost

log = logging.getLogger(__name__)


def serve(
    host: PluginHost,
    settings: AgentSettings,
    *,
    kubeconfig: str | None = None,
    server: str | None = None,
) -> None:
    """Run the agent until SIGTERM/SIGINT; the state is in the OSInstance, so stopping is safe."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    api = agent_api_client(kubeconfig=kubeconfig, server=server)
    try:
        Agent(api, host, settings, stop=stop).run()
    finally:
        api.close()
