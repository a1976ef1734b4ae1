"""`kubeos`: tools around the product, e.g. the embedded-cluster simulation."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


class Mode(StrEnum):
    serial = "serial"
    parallel = "parallel"


class ImageType(StrEnum):
    disk = "disk"


@app.command()
def version() -> None:
    """Print the kubeos version."""
    from kubeos import __version__

    typer.echo(__version__)


@app.command()
def simulate(
    nodes: Annotated[int, typer.Option(min=1, max=50, help="simulated worker nodes")] = 4,
    maxunavailable: Annotated[int, typer.Option(min=1, help="nodes per batch")] = 2,
    mode: Annotated[Mode, typer.Option(help="executionmode of the OS")] = Mode.parallel,
    imagetype: Annotated[ImageType, typer.Option(help="upgrade image source")] = ImageType.disk,
    workdir: Annotated[
        Path | None, typer.Option(help="where disks and host roots go (default: a temp dir)")
    ] = None,
    timeinterval: Annotated[
        int, typer.Option(min=0, help="seconds between batches (the OS's timeinterval)")
    ] = 0,
    fail_node: Annotated[
        list[str] | None,
        typer.Option(help="serve this node a corrupted image (it refuses it, D4); repeatable"),
    ] = None,
    keep: Annotated[bool, typer.Option(help="keep the temp work dir afterwards")] = False,
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 300.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log the cluster")] = False,
) -> None:
    """Run an upgrade on an embedded cluster (API stand-in, operator, N nodes) and show it.

    Each node has its own GPT disk-image file and host root, and runs the real agent with
    the real plugins; the new OS image comes from a local HTTPS server with mutual TLS.
    Exits 0 when every node runs the new version, 1 when a node failed (after the others
    finished) or on a timeout; a failed run keeps its work dir with the agents' logs.
    """
    from kubeos.sim.run import SimulateOptions
    from kubeos.sim.run import simulate as run_simulation

    names = {f"node-{i}" for i in range(1, nodes + 1)}
    for name in fail_node or ():
        if name not in names:
            raise typer.BadParameter(
                f"{name!r} is not a node of this simulation (node-1 ... node-{nodes})",
                param_hint="--fail-node",
            )
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    outcome = run_simulation(
        SimulateOptions(
            nodes=nodes,
            maxunavailable=maxunavailable,
            mode=mode.value,
            imagetype=imagetype.value,
            workdir=workdir,
            keep=keep,
            timeout=timeout,
            timeinterval=timeinterval,
            fail_nodes=tuple(fail_node or ()),
        ),
        sys.stdout,
    )
    raise typer.Exit(0 if outcome.ok else 1)
