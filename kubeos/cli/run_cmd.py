"""`kubeos-agent run`: the cluster node agent (cluster issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `run` command to the agent CLI."""
