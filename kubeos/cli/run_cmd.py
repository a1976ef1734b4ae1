"""`kubeos-agent run`: the cluster node agent (runs in a DaemonSet with the host mounted)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubeos.cli.common import EXTRA_HELP, host, parse_extras, setup_logging


def register(app: typer.Typer) -> None:
    """Attach the `run` command to the agent CLI."""

    @app.command()
    def run(
        node: Annotated[
            str,
            typer.Option(envvar="NODE_NAME", help="this node's name (DaemonSet: spec.nodeName)"),
        ],
        host_root: Annotated[
            Path, typer.Option(help="where the host's / is mounted in the agent's container")
        ] = Path("/"),
        proc_sys: Annotated[
            Path | None,
            typer.Option(help="the kernel's /proc/sys (default /proc/sys)"),
        ] = None,
        disk: Annotated[
            Path | None,
            typer.Option(help="disk (or disk-image file) with the A/B layout; default: discover"),
        ] = None,
        kubeconfig: Annotated[
            str | None, typer.Option(help="kubeconfig file (default: in-cluster, then ~/.kube)")
        ] = None,
        server: Annotated[
            str | None, typer.Option(help="plain API server URL instead of a kubeconfig")
        ] = None,
        namespace: Annotated[
            str, typer.Option(envvar="KUBEOS_NAMESPACE", help="namespace of the OSInstances")
        ] = "default",
        drain_timeout: Annotated[
            float, typer.Option(help="seconds a PodDisruptionBudget may block the drain")
        ] = 300.0,
        extra: Annotated[list[str] | None, typer.Option("--extra", help=EXTRA_HELP)] = None,
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ) -> None:
        """Watch this node's OSInstance and upgrade, roll back or configure the node."""
        from kubeos.agent.main import serve
        from kubeos.agent.operations import AgentSettings

        setup_logging(verbose)
        settings = AgentSettings(
            node_name=node,
            namespace=namespace,
            host_root=host_root,
            proc_sys=proc_sys or Path("/proc/sys"),
            disk=disk,
            drain_timeout=drain_timeout,
            extras=parse_extras(extra),
        )
        if server and kubeconfig:
            raise typer.BadParameter("give --kubeconfig or --server, not both")
        serve(host(), settings, kubeconfig=kubeconfig, server=server)
