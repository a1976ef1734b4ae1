"""`kubeos`: tools around the product, e.g. the embedded-cluster simulation."""

from __future__ import annotations

import typer

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the kubeos version."""
    from kubeos import __version__

    typer.echo(__version__)
