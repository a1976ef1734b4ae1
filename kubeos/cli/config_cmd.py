"""`kubeos-agent config apply`: apply a sysconfigs block on one node, without a cluster.

The input is an OS object (its `spec.sysconfigs` or `spec.upgradeconfigs`) or a bare
block (a mapping with `version` and `configs`). Everything is validated first; nothing
is applied when any rule is broken. Settings are then applied in order and the first
failure stops the run (S6/C5), naming the model, key and reason and what went before.

Exit codes: 0 applied, 1 invalid input (nothing applied), 2 unreadable file,
3 plugin conflict, 4 a setting failed (those listed before it stay applied).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from kubeos.cli.common import fail, host, load_yaml_documents, setup_logging
from kubeos.configapply import apply_sysconfigs
from kubeos.contracts import NodeContext
from kubeos.errors import Problem, SettingError, ValidationFailed
from kubeos.models.os import parse_os
from kubeos.models.settings import ModelValidator, SysConfigs, parse_sysconfigs

EXIT_INVALID, EXIT_UNREADABLE, EXIT_FAILED = 1, 2, 4

config_app = typer.Typer(
    help="Apply kernel and boot settings (sysconfigs) on this node.",
    no_args_is_help=True,
    add_completion=False,
)


class Block(StrEnum):
    sysconfigs = "sysconfigs"
    upgradeconfigs = "upgradeconfigs"


class Label(StrEnum):
    A = "A"
    B = "B"


def select_block(doc: Any, block: str, validators: Mapping[str, ModelValidator]) -> SysConfigs:
    """The block to apply, validated; ValidationFailed lists every broken rule."""
    shape = Problem(block, "S0", "input must be an OS object or a mapping with version and configs")
    if not isinstance(doc, Mapping):
        raise ValidationFailed([shape], "input")
    if "spec" in doc or "kind" in doc:
        os_ = parse_os(doc, validators)
        chosen: SysConfigs | None = getattr(os_.spec, block)
        if chosen is None:
            missing = Problem(f"spec.{block}", "C1", "is missing: nothing to apply")
            raise ValidationFailed([missing], f"OS {os_.namespace}/{os_.name}")
        return chosen
    raw = doc.get(block) if block in doc else doc
    if not isinstance(raw, Mapping) or not ({"version", "configs"} & set(raw)):
        raise ValidationFailed([shape], "input")
    sysconfigs, problems = parse_sysconfigs(raw, block, validators)
    if problems:
        raise ValidationFailed(problems, f"{block} block")
    return sysconfigs


@config_app.command("apply")
def apply(
    file: Annotated[
        Path,
        typer.Option("--file", "-f", help="OS object, or a bare block with version and configs"),
    ],
    block: Annotated[
        Block, typer.Option("--block", help="which block of an OS object to apply")
    ] = Block.sysconfigs,
    host_root: Annotated[
        Path,
        typer.Option(
            "--host-root", help="where the host's / is mounted", file_okay=False, exists=True
        ),
    ] = Path("/"),
    proc_sys: Annotated[
        Path,
        typer.Option("--proc-sys", help="the kernel's sysctl tree", file_okay=False, exists=True),
    ] = Path("/proc/sys"),
    pin_current: Annotated[
        Label | None,
        typer.Option(
            "--pin-current",
            help="B3: the grub entry that counts as current (default: the one booted from)",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every step")] = False,
) -> None:
    """Validate, then apply the settings in order; stop and report at the first failure."""
    if verbose:
        setup_logging(verbose=True)
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    docs = load_yaml_documents(file)
    if len(docs) != 1:
        raise fail(
            f"{file}: expected exactly one YAML document, found {len(docs)}", EXIT_UNREADABLE
        )
    plugins = host()
    try:
        sysconfigs = select_block(docs[0], block.value, plugins.model_validators())
    except ValidationFailed as exc:
        raise fail(f"{exc}\nnothing was applied", EXIT_INVALID) from None
    node = NodeContext(
        host_root=host_root,
        proc_sys=proc_sys,
        pinned_current=pin_current.value if pin_current else None,
    )
    report = apply_sysconfigs(plugins, sysconfigs, node)
    for change in report.changes:
        typer.echo(str(change))
    if report.failed is not None:
        _report_failure(block.value, sysconfigs.version, report.failed, report.changes)
        raise typer.Exit(EXIT_FAILED)
    typer.echo(
        f"{block.value} version {sysconfigs.version!r}: {len(sysconfigs.configs)} config(s),"
        f" {len(report.changes)} setting(s) processed"
    )


def _report_failure(block: str, version: str, failed: Exception, applied: list[Any]) -> None:
    if isinstance(failed, SettingError):
        what = f"model {failed.model}, key {failed.key!r}: {failed.reason}"
    else:
        what = str(failed)
    typer.echo(f"error: {block} version {version!r} stopped at {what}", err=True)
    if applied:
        typer.echo("applied before the failure (stays applied, C5):", err=True)
        for change in applied:
            typer.echo(f"  {change}", err=True)
    else:
        typer.echo("nothing was applied before the failure", err=True)


def register(app: typer.Typer) -> None:
    """Attach the `config` command group to the agent CLI."""
    app.add_typer(config_app, name="config")
