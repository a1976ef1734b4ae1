"""`kubeos-agent config apply`: apply a sysconfigs block on one node (settings issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `config` command group to the agent CLI."""
