"""`python -m kubeos.sim.agentproc`: a simulated node's agent process.

The real agent (`kubeos.agent.main.serve`) with the real plugins from the entry points,
plus the simulated machine's reboot hook registered last so it wins over the built-in.
Takes the same options as `kubeos-agent run`.
"""

from __future__ import annotations

import argparse
import logging
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


if __name__ == "__main__":
    main()
