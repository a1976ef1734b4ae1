"""Helpers shared by the CLI commands: loading YAML input and reporting failures."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
import yaml

from kubeos.errors import KubeosError


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def load_yaml_documents(path: Path) -> list[Any]:
    """All documents of a YAML file; a parse error names the file and position."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path} is not valid YAML: {exc}") from exc


def fail(exc: KubeosError | str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code)
