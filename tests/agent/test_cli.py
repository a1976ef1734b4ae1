"""`kubeos-agent run` as a process against the API stand-in: registers, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kubeos.sim.apiserver import ApiServer
from tests.agent.conftest import AgentEnv

AGENT = Path(sys.executable).with_name("kubeos-agent")


def test_agent_command_registers_its_node_and_stops_on_sigterm(env: AgentEnv) -> None:
    if not AGENT.exists():
        pytest.skip("the kubeos-agent console script is not installed in this environment")
    api: ApiServer = env.api
    proc = subprocess.Popen(
        [
            str(AGENT),
            "run",
            "--node",
            "node-1",
            "--host-root",
            str(env.node.host_root),
            "--proc-sys",
            str(env.node.proc_sys),
            "--disk",
            str(env.node.disk),
            "--server",
            api.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        api.wait_for("osinstances", lambda items: any(o.get("status") for o in items), timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "signal 15: stopping" in out
    assert {r.user_agent for r in api.audit if r.resource == "osinstances"} == {
        "kubeos-agent/0.1.0"
    }
