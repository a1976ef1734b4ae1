"""Hook specifications: the contract between the kubeos host and its plugins.

Every behaviour that varies by image type, settings model or site is a hook. The host's
own defaults (`kubeos.builtin.*`) implement these hooks and are found through the same
`kubeos` entry-point group as third-party plugins, so a test or a site replaces one by
registering a plugin (later registration wins for first-result hooks, as in pluggy).

Hooks that belong to an owner (an image type, a settings model) are called only on the
plugin that declared it in `kubeos_provides`; the others are ordinary pluggy calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from kubeos.contracts import Change, FetchedImage, NodeContext, Partition, Provides
    from kubeos.errors import Problem
    from kubeos.models.os import OSSpec
    from kubeos.models.settings import SettingsConfig

PROJECT = "kubeos"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def kubeos_provides() -> Provides:
    """Declare the image types and settings models this plugin owns; called once at load."""


@hookspec(firstresult=True)
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem] | None:
    """Check one config block of `model` without touching a node (owner only).

    Return the problems (fields relative to the block, e.g. `contents[0].value`); [] if valid.
    """


@hookspec(firstresult=True)
def kubeos_apply_setting(
    model: str, config: SettingsConfig, node: NodeContext
) -> list[Change] | None:
    """Apply one config block on the node in order (owner only); return what changed.

    Raise `SettingError(model, key, reason)` at the first item that fails: items before
    it stay applied (C5), items after it are not tried.
    """


@hookspec(firstresult=True)
def kubeos_fetch_image(spec: OSSpec, node: NodeContext, target: Partition) -> FetchedImage | None:
    """Acquire the root-filesystem image of `spec.imagetype` (owner only).

    The image may be streamed straight onto `target` (then `on_target=True`), or left in
    a spool file under `node.scratch()`. Must not change the boot entry. Raise
    `ImageError` for refused sources (D1-D3, G3), transfer failures or oversize images.
    """


@hookspec
def kubeos_verify_image(spec: OSSpec, image: FetchedImage, node: NodeContext) -> None:
    """Check a fetched image before it is installed (every implementation runs).

    Raise `ImageError` to refuse it (D4: checksum mismatch); return None to accept.
    """


@hookspec(firstresult=True)
def kubeos_install_partition(
    image: FetchedImage, target: Partition, node: NodeContext
) -> Partition | None:
    """Write the image onto the inactive root partition, fsync, and read it back.

    Return the partition once the bytes on it are verified; raise `InstallError`
    otherwise. Must not change the boot entry.
    """


@hookspec(firstresult=True)
def kubeos_switch_boot(target: Partition, node: NodeContext) -> str | None:
    """Make the next boot (and the ones after) start from `target`; return what was set.

    Only called after `kubeos_install_partition` succeeded, or for a rollback (R3).
    """


@hookspec(firstresult=True)
def kubeos_reboot(node: NodeContext, reason: str) -> bool | None:
    """Reboot the node (the real one asks the host's init); return True once requested."""
