"""Upgrade, rollback and reboot of one node: the order of the hooks and its guards.

upgrade: fetch (owner of spec.imagetype) -> verify (D4) -> install on the inactive root ->
switch boot (U5). The boot entry is switched only when the install hook returned the
verified target partition; on any failure after bytes reached the target, that root is
wiped so it can never be booted or rolled back to half-written. Spool files are removed
on every path. Nothing here reboots: the caller decides when (`reboot`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from kubeos.contracts import FetchedImage, NodeContext, Partition
from kubeos.errors import ImageError, InstallError, KubeosError
from kubeos.models.os import OSSpec
from kubeos.node import blockio, ext4, grubenv
from kubeos.node.layout import DiskLayout, find_layout
from kubeos.node.lock import node_lock
from kubeos.plugins import PluginHost

log = logging.getLogger(__name__)


class RollbackRefused(InstallError):
    """R3: the other root holds no valid root filesystem, so switching would brick the node."""


class RebootFailed(KubeosError):
    """No reboot hook requested the reboot."""


def _cleanup(image: FetchedImage | None) -> None:
    if image is None:
        return
    for p in image.temp_paths:
        with contextlib.suppress(FileNotFoundError):
            Path(p).unlink()
            log.debug("removed spool file %s", p)


def _same_partition(got: object, want: Partition) -> bool:
    return (
        isinstance(got, Partition)
        and got.label == want.label
        and Path(got.path) == Path(want.path)
        and got.offset == want.offset
    )


def _switch(host: PluginHost, target: Partition, node: NodeContext) -> str:
    done = host.hook.kubeos_switch_boot(target=target, node=node)
    if not done:
        raise InstallError(f"no boot-switch hook switched the next boot to root {target.label}")
    return str(done)


def _unexpected(what: str, exc: Exception) -> KubeosError:
    """A plugin bug or an OS error: still a KubeosError, so callers report it as a failure."""
    log.exception("%s failed unexpectedly", what)
    return InstallError(f"{what} failed: {type(exc).__name__}: {exc}")


def install_and_switch(
    host: PluginHost, spec: OSSpec, image: FetchedImage, target: Partition, node: NodeContext
) -> Partition:
    """Verify, install and switch boot to `target`; wipe `target` if anything fails."""
    touched = image.on_target
    try:
        host.hook.kubeos_verify_image(spec=spec, image=image, node=node)
        touched = True
        installed = host.hook.kubeos_install_partition(image=image, target=target, node=node)
        if not _same_partition(installed, target):
            raise InstallError(
                f"install hook returned {installed!r} instead of the verified root"
                f" {target.label}: boot entry left unchanged"
            )
        try:
            version = ext4.root_version(target)
        except ext4.RootFsError as exc:
            raise InstallError(f"the installed image is not a usable root fs: {exc}") from exc
        if version != spec.osversion:
            raise InstallError(
                f"spec.osversion: the image calls itself {version!r} (PRETTY_NAME), not"
                f" {spec.osversion!r}; booting it would never count as done and the node"
                " would be upgraded again and again [U6]"
            )
        _switch(host, target, node)
    except BaseException:
        if touched:
            blockio.invalidate(target)
        raise
    return target


def upgrade(host: PluginHost, spec: OSSpec, node: NodeContext) -> Partition:
    """Write `spec`'s image onto the inactive root and make it the next boot (U5); no reboot.

    Raises a KubeosError subclass and leaves the boot entry as it was on any failure.
    """
    if spec.opstype != "upgrade":
        raise ImageError(f"spec.opstype: {spec.opstype!r} is not an upgrade [G8]")
    try:
        with node_lock(node, f"upgrade to {spec.osversion!r}"):
            return _upgrade(host, spec, node)
    except KubeosError:
        raise
    except Exception as exc:
        raise _unexpected("upgrade", exc) from exc


def _boot_running_root_meanwhile(host: PluginHost, layout: DiskLayout, node: NodeContext) -> None:
    """Point the next boot at the running root before the other one is overwritten.

    Normally it already does. It does not after an earlier upgrade was staged but not
    rebooted (or with an empty grubenv, where grub falls back to its first entry): then a
    failure half-way through writing would leave the node set to boot a wiped root.
    """
    entry = grubenv.saved_entry(node)
    if entry == layout.current:
        return
    log.warning(
        "next boot points at %r, not the running root %s: pointing it back to %s before"
        " root %s is overwritten",
        entry,
        layout.current,
        layout.current,
        layout.other.label,
    )
    _switch(host, layout.current_partition, node)


def _upgrade(host: PluginHost, spec: OSSpec, node: NodeContext) -> Partition:
    layout = find_layout(node)
    target = layout.other
    log.info(
        "upgrade to %r: booted from root %s, writing root %s (%s)",
        spec.osversion,
        layout.current,
        target.label,
        target.device or target.path,
    )
    owner = host.image_owner(spec.imagetype)
    _boot_running_root_meanwhile(host, layout, node)
    image: FetchedImage | None = None
    try:
        image = host.owner_hook("kubeos_fetch_image", owner)(spec=spec, node=node, target=target)
        if image is None:
            raise ImageError(f"plugin {owner} returned no image for imagetype {spec.imagetype!r}")
        result = install_and_switch(host, spec, image, target, node)
    finally:
        _cleanup(image)
    log.info("upgrade staged: next boot starts root %s (%s)", result.label, spec.osversion)
    return result


def rollback_target(layout: DiskLayout) -> tuple[Partition, str]:
    """The root a rollback switches to and the version it holds; refuse an unusable one."""
    target = layout.other
    try:
        version = ext4.root_version(target)
    except ext4.RootFsError as exc:
        raise RollbackRefused(
            f"rollback refused: root {target.label} holds no valid root filesystem ({exc});"
            " the boot entry is unchanged [R3]"
        ) from exc
    return target, version


def rollback(host: PluginHost, node: NodeContext, expected_version: str | None = None) -> Partition:
    """R3: point the next boot at the other root; nothing is fetched or written to it.

    With `expected_version` (the rollback OS's osversion), the other root must carry
    exactly that version, or nothing is switched (G8).
    """
    try:
        with node_lock(node, "rollback"):
            return _rollback(host, node, expected_version)
    except KubeosError:
        raise
    except Exception as exc:
        raise _unexpected("rollback", exc) from exc


def _rollback(host: PluginHost, node: NodeContext, expected_version: str | None) -> Partition:
    layout = find_layout(node)
    target, version = rollback_target(layout)
    if expected_version is not None and version != expected_version:
        raise RollbackRefused(
            f"spec.osversion: rollback asks for {expected_version!r} but root {target.label}"
            f" holds {version!r}; the boot entry is unchanged [R3, G8]"
        )
    log.info(
        "rollback: booted from root %s, switching to root %s (%s)",
        layout.current,
        target.label,
        version,
    )
    _switch(host, target, node)
    return target


def boot_entry(node: NodeContext) -> str | None:
    """The root label the next boot starts from according to the grubenv (None if unset)."""
    return grubenv.saved_entry(node)


def reboot(host: PluginHost, node: NodeContext, reason: str) -> None:
    """Ask the kubeos_reboot hook to reboot; raise RebootFailed if none did."""
    log.info("requesting reboot: %s", reason)
    if not host.hook.kubeos_reboot(node=node, reason=reason):
        raise RebootFailed("no reboot hook requested a reboot")
