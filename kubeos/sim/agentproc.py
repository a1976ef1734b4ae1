"""A simulated node's agent process (`python -m kubeos.sim.agentproc`, or forked).

The real agent (`kubeos.agent.main.serve`) with the real plugins from the entry points,
plus the simulated machine's reboot hook registered last so it wins over the built-in.
Takes the same options as `kubeos-agent run`.

The simulation starts these processes from a fork server that has already imported the
agent and the plugins (`preload`), so a (re)started agent is up in milliseconds instead
of paying the Kubernetes client's import time on every simulated reboot.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from importlib.metadata import entry_points
from pathlib import Path

from kubeos.agent.main import serve
from kubeos.agent.operations import AgentSettings
from kubeos.plugins import PluginHost
from kubeos.sim import rebootplugin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kubeos.sim.agentproc")
    parser.add_argument("--node", required=True)
    parser.add_argument("--host-root", type=Path, required=True)
    parser.add_argument("--proc-sys", type=Path, required=True)
    parser.add_argument("--disk", type=Path, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{args.node}] %(name)s: %(message)s",
    )
    host = PluginHost().load_entry_points()
    host.register(rebootplugin, name="sim_reboot", distribution="kubeos (simulation)")
    settings = AgentSettings(
        node_name=args.node,
        namespace=args.namespace,
        host_root=args.host_root,
        proc_sys=args.proc_sys,
        disk=args.disk,
        work_dir=args.host_root / "persist/kubeos/tmp",
        drain_timeout=args.drain_timeout,
    )
    serve(host, settings, server=args.server)


def preload() -> None:
    """Import every `kubeos` plugin module now (run once in the fork server)."""
    for ep in entry_points(group="kubeos"):
        with contextlib.suppress(Exception):  # a broken plugin is reported by the agent
            ep.load()


def child_main(argv: list[str], log_path: str) -> None:
    """Entry point of a forked agent: stdout/stderr go to the node's log file (G7)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    main(argv)


if __name__ == "__main__":
    main()
