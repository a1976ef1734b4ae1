"""Upgrade, rollback and reboot of one node: the order of the hooks and its guards.

upgrade: fetch (owner of spec.imagetype) -> verify (D4) -> install on the inactive root ->
switch boot (U5). The boot entry is switched only when the install hook returned the
verified target partition, its filesystem fits the partition and grub.cfg's entry for it
mounts it (root= names that partition or its filesystem). On any failure before the switch
after bytes reached the target, that root is wiped so it can never be booted or rolled
back to half-written. A failing switch is undone first (next boot back on the running
root) and the target is wiped only once the grubenv reads back the running root: a
verified root is never wiped while the next boot may still start it. Spool files are
removed on every path. Nothing here reboots: the caller decides when (`reboot`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from kubeos.contracts import FetchedImage, NodeContext, Partition
from kubeos.errors import ImageError, InstallError, KubeosError
from kubeos.models.os import OSSpec
from kubeos.node import blockio, ext4, grubcfg, grubenv
from kubeos.node.layout import DiskLayout, find_layout
from kubeos.node.lock import node_lock
from kubeos.node.parttable import read_table
from kubeos.node.rootspec import RootSpec
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


def _check_fs_fits(target: Partition) -> None:
    """The filesystem must not claim more bytes than its partition (a truncated image would)."""
    try:
        claimed = ext4.fs_bytes(target.path, target.offset)
    except ext4.RootFsError as exc:
        raise InstallError(f"the installed image is not a usable root fs: {exc}") from exc
    if claimed is not None and claimed > target.size:
        raise InstallError(
            f"the installed image's ext4 superblock claims {claimed} bytes but root"
            f" {target.label} has {target.size}: the kernel would read past the partition"
            " (truncated image or one built for another disk) [U5]"
        )


def _names_target(root: RootSpec, target: Partition, disk: Path) -> bool:
    kind, value = root.kind, root.value
    for prefix, as_kind in (("/dev/disk/by-uuid/", "uuid"), ("/dev/disk/by-partuuid/", "partuuid")):
        if kind == "device" and value.startswith(prefix):
            kind, value = as_kind, value[len(prefix) :].lower()
    if kind == "uuid":
        return ext4.fs_uuid(target.path, target.offset) == value
    if kind == "partuuid":
        entry = read_table(disk).entry(target.number)
        return entry is not None and entry.partuuid == value
    if target.device.startswith("/dev/"):
        return value == target.device
    # a disk-image file: no kernel name is known, the partition number is
    return bool(root.number) and root.number == target.number


def _check_entry_mounts_target(target: Partition, node: NodeContext, disk: Path) -> None:
    """U5: grub.cfg's entry for `target` must mount the root just written, not another."""
    root = grubcfg.entry_root(node, target.label)
    if root is None:
        log.warning("%s not found: cannot check what entry %s mounts", node.grub_cfg, target.label)
        return
    if not _names_target(root, target, disk):
        raise InstallError(
            f"{node.grub_cfg}: menu entry {target.label!r} boots root={root}, which is not"
            f" root {target.label} ({target.device or target.path}, fs UUID"
            f" {ext4.fs_uuid(target.path, target.offset)}); switching would leave the next"
            " boot without its root, so the boot entry is unchanged [U5]"
        )


def _check_installed(spec: OSSpec, target: Partition, node: NodeContext, disk: Path) -> None:
    _check_fs_fits(target)
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
    _check_entry_mounts_target(target, node, disk)


def _undo_switch(host: PluginHost, layout: DiskLayout, node: NodeContext) -> str:
    """After a failed switch: point the next boot back at the running root.

    Wipes the target only once the grubenv reads back the running root; returns what
    happened, for the error message.
    """
    target, current = layout.other, layout.current
    try:
        _switch(host, layout.current_partition, node)
        entry = grubenv.saved_entry(node)
    except Exception as exc:
        log.exception("pointing the next boot back at root %s failed", current)
        return (
            f"pointing the next boot back at root {current} failed too ({exc}); root"
            f" {target.label} holds the verified image and is NOT wiped, so whichever root"
            " the next boot starts is valid; check the grubenv before rebooting"
        )
    if entry != current:
        return (
            f"the grubenv reads saved_entry={entry!r} after pointing it back at root"
            f" {current}; root {target.label} holds the verified image and is NOT wiped;"
            " check the grubenv before rebooting"
        )
    blockio.invalidate(target)
    return f"next boot points at the running root {current} again and root {target.label} is wiped"


def install_and_switch(
    host: PluginHost, spec: OSSpec, image: FetchedImage, layout: DiskLayout, node: NodeContext
) -> Partition:
    """Verify, install and switch boot to the inactive root; never leave a wiped next boot.

    Any failure before the switch wipes the target (if touched). A failed switch is undone
    first and the target wiped only once the next boot is back on the running root (U5).
    """
    target = layout.other
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
        _check_installed(spec, target, node, layout.disk)
    except BaseException:
        if touched:
            blockio.invalidate(target)
        raise
    try:
        _switch(host, target, node)
    except BaseException as exc:
        outcome = _undo_switch(host, layout, node)
        if not isinstance(exc, Exception):
            raise
        raise InstallError(
            f"switching the next boot to root {target.label} failed ({exc}); {outcome}"
        ) from exc
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
        result = install_and_switch(host, spec, image, layout, node)
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
