"""`kubeos-agent upgrade` / `rollback` / `boot-check` on one node without a cluster.

The same functions the cluster agent calls (`kubeos.node.*`), driven from an OS file.
`--host-root` and `--disk` point them at a mounted host or at a disk-image file, which is
how the local demo runs them. A progress bar (bytes, rate, ETA) is drawn on a terminal;
otherwise progress goes to the log as plain lines.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from kubeos.cli.common import (
    EXTRA_HELP,
    fail,
    host,
    load_yaml_documents,
    parse_extras,
    setup_logging,
)
from kubeos.contracts import NodeContext, Progress
from kubeos.errors import KubeosError, ValidationFailed
from kubeos.models.os import OS, parse_os
from kubeos.node import bootcheck
from kubeos.node import upgrade as node_upgrade
from kubeos.node.layout import find_layout
from kubeos.node.progress import LogProgress

log = logging.getLogger(__name__)

HostRoot = Annotated[
    Path, typer.Option("--host-root", help="where the node's root filesystem is mounted")
]
Disk = Annotated[
    Path | None,
    typer.Option("--disk", help="block device or disk-image file with the A/B layout"),
]
WorkDir = Annotated[
    Path | None, typer.Option("--work-dir", help="spool directory (default: /persist/kubeos/tmp)")
]
NoReboot = Annotated[
    bool, typer.Option("--no-reboot", help="switch the boot entry but do not reboot")
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")]
Extras = Annotated[list[str] | None, typer.Option("--extra", help=EXTRA_HELP)]


def _load_os(file: Path, opstype: str) -> OS:
    docs = load_yaml_documents(file)
    if not docs:
        raise fail(f"{file}: no YAML document found", code=2)
    if len(docs) > 1:
        raise fail(f"{file}: holds {len(docs)} documents; give exactly one OS", code=2)
    try:
        os_ = parse_os(docs[0], host().model_validators())
    except ValidationFailed as exc:
        raise fail(exc, code=2) from exc
    if os_.spec.opstype != opstype:
        raise fail(
            f"{file}: spec.opstype is {os_.spec.opstype!r}; this command needs {opstype!r} [G8]",
            code=2,
        )
    return os_


@contextlib.contextmanager
def _progress() -> Iterator[Progress]:
    """A rich progress bar on a terminal, throttled log lines otherwise."""
    if not sys.stderr.isatty():
        yield LogProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, int] = {}

    def update(phase: str, done: int, total: int | None) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar:
        yield update


def _node(
    host_root: Path, disk: Path | None, work_dir: Path | None, extras: list[str] | None = None
) -> NodeContext:
    if not host_root.is_dir():
        raise fail(f"--host-root {host_root} is not a directory", code=2)
    if disk is not None and not disk.exists():
        raise fail(f"--disk {disk} does not exist", code=2)
    return NodeContext(
        host_root=host_root, disk=disk, work_dir=work_dir, extras=parse_extras(extras)
    )


def _reboot(node: NodeContext, no_reboot: bool, reason: str) -> None:
    if no_reboot:
        typer.echo("not rebooting (--no-reboot): the new root starts at the next boot")
        return
    try:
        node_upgrade.reboot(host(), node, reason)
    except KubeosError as exc:
        raise fail(f"boot entry switched, but the reboot failed: {exc}") from exc


def upgrade(
    file: Annotated[Path, typer.Option("--file", "-f", help="OS object with opstype upgrade")],
    host_root: HostRoot = Path("/"),
    disk: Disk = None,
    work_dir: WorkDir = None,
    no_reboot: NoReboot = False,
    extra: Extras = None,
    verbose: Verbose = False,
) -> None:
    """Upgrade this node: fetch, verify, write the inactive root, switch boot, reboot."""
    setup_logging(verbose)
    os_ = _load_os(file, "upgrade")
    node = _node(host_root, disk, work_dir, extra)
    try:
        with _progress() as progress:
            node.progress = progress
            part = node_upgrade.upgrade(host(), os_.spec, node)
    except KubeosError as exc:
        raise fail(f"upgrade failed, boot entry unchanged: {exc}") from exc
    typer.echo(
        f"upgraded: root {part.label} ({part.device or part.path}) holds {os_.spec.osversion!r}"
        f" and is the next boot"
    )
    _reboot(node, no_reboot, f"upgrade to {os_.spec.osversion}")


def rollback(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="OS object with opstype rollback (checks osversion)"),
    ] = None,
    host_root: HostRoot = Path("/"),
    disk: Disk = None,
    no_reboot: NoReboot = False,
    verbose: Verbose = False,
) -> None:
    """Roll back (R3): boot the other root at the next boot; nothing is fetched."""
    setup_logging(verbose)
    expected = _load_os(file, "rollback").spec.osversion if file is not None else None
    node = _node(host_root, disk, None)
    try:
        part = node_upgrade.rollback(host(), node, expected_version=expected)
    except KubeosError as exc:
        raise fail(f"rollback failed, boot entry unchanged: {exc}") from exc
    typer.echo(f"rolled back: root {part.label} ({part.device or part.path}) is the next boot")
    _reboot(node, no_reboot, "rollback")


def boot_check(
    expect_version: Annotated[
        str | None, typer.Option("--expect-version", help="PRETTY_NAME the node should run")
    ] = None,
    expect_root: Annotated[
        str | None, typer.Option("--expect-root", help="A or B: the root it should run from")
    ] = None,
    host_root: HostRoot = Path("/"),
    disk: Disk = None,
    verbose: Verbose = False,
) -> None:
    """Report which root and version the node runs; exit 1 if not the expected ones (U6)."""
    setup_logging(verbose)
    node = _node(host_root, disk, None)
    result = bootcheck.check_boot(node, expect_version, expect_root)
    try:
        entry = node_upgrade.boot_entry(node)
    except KubeosError:
        entry = None
    layout_note = ""
    with contextlib.suppress(KubeosError):
        layout = find_layout(node)
        layout_note = f", disk {layout.disk}"
    typer.echo(
        f"running {result.version or '?'!r} from root {result.label or '?'}"
        f"; next boot: root {entry or '?'}{layout_note}"
    )
    if not result.ok:
        raise fail(result.reason)


def register(app: typer.Typer) -> None:
    """Attach the single-node upgrade, rollback and boot-check commands to the agent CLI."""
    app.command("upgrade")(upgrade)
    app.command("rollback")(rollback)
    app.command("boot-check")(boot_check)
