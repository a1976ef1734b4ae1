"""`kubeos-agent`: the node agent, and the same operations on one node without a cluster."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kubeos.cli import config_cmd, node_cmd, run_cmd
from kubeos.cli.common import fail, host, load_yaml_documents
from kubeos.errors import ValidationFailed
from kubeos.models.os import parse_os

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


class Output(StrEnum):
    text = "text"
    json = "json"


@app.command("list-plugins")
def list_plugins(
    output: Annotated[Output, typer.Option("--output", "-o", help="text or json")] = Output.text,
) -> None:
    """List installed plugins, their distribution, version and what they provide."""
    plugins = host()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "image_types": list(info.provides.image_types),
            "setting_models": list(info.provides.setting_models),
        }
        for info in sorted(plugins.plugins.values(), key=lambda i: i.name)
    ]
    failures = [f.__dict__ for f in plugins.failures]
    if output is Output.json:
        typer.echo(json.dumps({"plugins": rows, "failed": failures}, indent=2))
    else:
        for r in rows:
            provides = ", ".join(
                [f"image:{t}" for t in r["image_types"]]
                + [f"model:{m}" for m in r["setting_models"]]
            )
            typer.echo(f"{r['name']:<22} {r['distribution']} {r['version']:<8} {provides or '-'}")
        typer.echo(
            f"{len(rows)} plugins; image types: {', '.join(sorted(plugins.image_types)) or '-'};"
            f" setting models: {', '.join(sorted(plugins.setting_models)) or '-'}"
        )
        for f in plugins.failures:
            typer.echo(f"FAILED {f.name} ({f.distribution}): {f.error}", err=True)
    if plugins.failures:
        raise typer.Exit(3)


@app.command()
def validate(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="YAML file with one or more OS objects")
    ],
) -> None:
    """Validate OS custom resources; exit 1 listing every problem."""
    validators = host().model_validators()
    docs = load_yaml_documents(file)
    if not docs:
        raise fail(f"{file}: no YAML document found")
    bad = 0
    for doc in docs:
        try:
            os_ = parse_os(doc, validators)
        except ValidationFailed as exc:
            bad += 1
            typer.echo(str(exc), err=True)
        else:
            typer.echo(f"OS {os_.namespace}/{os_.name}: valid ({os_.spec.opstype})")
    if bad:
        raise typer.Exit(1)


config_cmd.register(app)
node_cmd.register(app)
run_cmd.register(app)

if __name__ == "__main__":
    app()
