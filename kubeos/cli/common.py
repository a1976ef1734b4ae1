"""Helpers shared by the CLI commands: loading YAML input and reporting failures."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
import yaml

from kubeos.errors import KubeosError
from kubeos.plugins import PluginHost, get_host


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
        raise fail(f"cannot read {path}: {exc.strerror}", code=2) from exc
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise fail(f"{path} is not valid YAML: {exc}", code=2) from exc


def fail(exc: KubeosError | str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code)


def host() -> PluginHost:
    """The plugin host; a conflict between plugins is a clean CLI error, not a traceback."""
    try:
        return get_host()
    except KubeosError as exc:
        raise fail(exc, code=3) from exc


#: Help text of the `--extra` option wherever a command builds a NodeContext.
EXTRA_HELP = (
    "KEY=VALUE for a plugin (NodeContext.extras), repeatable: e.g. containerd.address=SOCK,"
    " docker.host=unix:///run/docker.sock, image_disk.attempts=5"
)


def parse_extras(items: list[str] | None) -> dict[str, str]:
    """`--extra KEY=VALUE` options as NodeContext.extras; a malformed one is a usage error.

    Plugins read their own keys (containerd.address, docker.host, image_disk.*), so a
    site or a third-party plugin gets settings without a new option in the core.
    """
    extras: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(ch.isspace() for ch in key):
            raise fail(f"--extra {item!r}: must be KEY=VALUE with a non-empty KEY", code=2)
        extras[key] = value
    return extras
