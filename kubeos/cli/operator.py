"""`kubeos-operator`: the cluster operator (cluster issue)."""

from __future__ import annotations

import typer

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.command()
def run() -> None:
    """Run the operator against the cluster in the current kube context."""
    raise NotImplementedError("the operator is not built yet")
