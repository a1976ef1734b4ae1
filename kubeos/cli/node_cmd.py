"""`kubeos-agent upgrade` / `rollback` on one node without a cluster (disk-upgrade issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the single-node upgrade and rollback commands to the agent CLI."""
