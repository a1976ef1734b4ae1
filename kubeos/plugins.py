"""The plugin host: loads plugins from the `kubeos` entry-point group, and nowhere else.

A plugin that fails to import is reported, not fatal, so one broken add-on cannot take
the agent down. Two plugins claiming the same image type or settings model is fatal:
which one would run would depend on install order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from kubeos import hooks
from kubeos.contracts import Provides
from kubeos.errors import NotProvided, PluginConflict, Problem
from kubeos.models.settings import ModelValidator, SettingsConfig

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "kubeos"


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    provides: Provides = field(default_factory=Provides)
    plugin: Any = None


@dataclass
class LoadFailure:
    name: str
    distribution: str
    error: str


class PluginHost:
    """The pluggy manager plus who owns which image type and settings model."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hooks.PROJECT)
        self.pm.add_hookspecs(hooks)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[LoadFailure] = []
        self.image_types: dict[str, str] = {}  # image type -> plugin name
        self.setting_models: dict[str, str] = {}  # model -> plugin name

    @property
    def hook(self) -> Any:
        return self.pm.hook

    # -- loading ---------------------------------------------------------------
    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> PluginHost:
        """Register every plugin of the `kubeos` group; report the ones that fail to load."""
        if eps is None:
            eps = entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(eps, key=lambda e: e.name):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            if ep.name in self.plugins:
                # The same distribution seen twice on sys.path (editable + site) is harmless.
                if self.plugins[ep.name].distribution == dist:
                    continue
                raise PluginConflict(
                    f"plugin name {ep.name!r} is used by {self.plugins[ep.name].distribution}"
                    f" and {dist}"
                )
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not stop the others
                log.error("plugin %s (%s) failed to load: %s", ep.name, dist, exc)
                self.failures.append(LoadFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                continue
            self.register(obj, name=ep.name, distribution=dist, version=version)
        return self

    def register(
        self, plugin: Any, name: str, distribution: str = "(registered)", version: str = ""
    ) -> PluginInfo:
        """Register a plugin object and its claims; refuse a claim someone else holds."""
        provides = Provides()
        impl = getattr(plugin, "kubeos_provides", None)
        if impl is not None:
            provides = impl() or Provides()
        for kind, table in (
            ("image type", self.image_types),
            ("settings model", self.setting_models),
        ):
            claimed = provides.image_types if kind == "image type" else provides.setting_models
            for item in claimed:
                if item in table:
                    owner = self.plugins[table[item]]
                    raise PluginConflict(
                        f"{kind} {item!r} is claimed by both {owner.name} ({owner.distribution})"
                        f" and {name} ({distribution}); uninstall one of them"
                    )
        self.pm.register(plugin, name=name)
        info = PluginInfo(name, distribution, version, provides, plugin)
        self.plugins[name] = info
        for t in provides.image_types:
            self.image_types[t] = name
        for m in provides.setting_models:
            self.setting_models[m] = name
        log.debug("registered plugin %s from %s %s: %s", name, distribution, version, provides)
        return info

    def unregister(self, name: str) -> None:
        info = self.plugins.pop(name)
        self.pm.unregister(name=name)
        for table in (self.image_types, self.setting_models):
            for key in [k for k, v in table.items() if v == name]:
                del table[key]
        del info

    # -- calling owners -----------------------------------------------------------
    def owner_hook(self, hook_name: str, owner: str) -> Any:
        """A caller of `hook_name` that reaches only plugin `owner`."""
        others = [info.plugin for n, info in self.plugins.items() if n != owner]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=others)

    def image_owner(self, image_type: str) -> str:
        try:
            return self.image_types[image_type]
        except KeyError:
            installed = ", ".join(sorted(self.image_types)) or "none"
            raise NotProvided(
                f"no plugin provides image type {image_type!r} (installed: {installed})"
            ) from None

    def model_owner(self, model: str) -> str:
        try:
            return self.setting_models[model]
        except KeyError:
            installed = ", ".join(sorted(self.setting_models)) or "none"
            raise NotProvided(
                f"unknown settings model {model!r} (installed: {installed})"
            ) from None

    def model_validators(self) -> dict[str, ModelValidator]:
        """One validator per installed model, for `parse_sysconfigs` (S1 and model rules)."""

        def make(model: str, owner: str) -> ModelValidator:
            def validate(config: SettingsConfig) -> list[Problem]:
                caller = self.owner_hook("kubeos_validate_setting", owner)
                return list(caller(model=model, config=config) or [])

            return validate

        return {m: make(m, o) for m, o in self.setting_models.items()}


_default: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, loaded from entry points on first use."""
    global _default
    if _default is None:
        _default = PluginHost().load_entry_points()
    return _default
