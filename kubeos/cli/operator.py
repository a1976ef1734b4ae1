"""`kubeos-operator`: the cluster operator (one active replica, Lease-based election)."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import typer

from kubeos.cli.common import setup_logging

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Upgrade, configure and roll back KubeOS nodes as OS objects ask."""


@app.command()
def run(
    kubeconfig: str | None = typer.Option(
        None, help="kubeconfig file (default: in-cluster config, else ~/.kube/config)"
    ),
    server: str | None = typer.Option(
        None, help="API server URL without credentials, e.g. the embedded simulation's"
    ),
    namespace: str = typer.Option(
        os.environ.get("KUBEOS_NAMESPACE", "default"),
        help="namespace of the OS, OSInstance and Lease objects",
    ),
    lease_name: str = typer.Option("kubeos-operator", help="name of the leader-election Lease"),
    identity: str | None = typer.Option(
        None, help="this replica's identity in the Lease (default: host name + random suffix)"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    """Run the operator until SIGTERM/SIGINT; on exit the Lease is released at once."""
    setup_logging(verbose)
    from kubeos.kube.client import api_client
    from kubeos.operator.service import USER_AGENT, Operator

    api = api_client(kubeconfig=kubeconfig, server=server, user_agent=USER_AGENT)
    operator = Operator(
        api, namespace, identity=identity or os.environ.get("POD_NAME"), lease_name=lease_name
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    operator.run(stop)
