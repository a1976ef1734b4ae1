"""`sysconfigs` / `upgradeconfigs`: parsing and the model-independent rules S1-S4.

Model-specific rules (K2, B4, B5 ...) belong to the plugin owning the model and are
asked for through the `kubeos_validate_setting` hook, so a third-party model brings its
own rules with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeos.errors import Problem

DELETE = "delete"


@dataclass(frozen=True)
class SettingItem:
    key: str
    value: str | None = None  # None: a bare key (grub) or "no value given"
    operation: str | None = None  # None: add or update; "delete"

    @property
    def is_delete(self) -> bool:
        return self.operation == DELETE


@dataclass(frozen=True)
class SettingsConfig:
    """One entry of `configs`: a model and the contents it should reach."""

    model: str
    contents: tuple[SettingItem, ...] = ()
    configpath: str | None = None


@dataclass(frozen=True)
class SysConfigs:
    version: str = ""
    configs: tuple[SettingsConfig, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "configs": []}
        for c in self.configs:
            entry: dict[str, Any] = {"model": c.model, "contents": []}
            if c.configpath is not None:
                entry["configpath"] = c.configpath
            for item in c.contents:
                d: dict[str, Any] = {"key": item.key}
                if item.value is not None:
                    d["value"] = item.value
                if item.operation is not None:
                    d["operation"] = item.operation
                entry["contents"].append(d)
            out["configs"].append(entry)
        return out


#: Validates one config block of a model: returns problems with fields relative to it.
ModelValidator = Callable[[SettingsConfig], list[Problem]]


def _scalar(v: Any) -> str | None:
    """CR values arrive as YAML scalars; `"1"`, `1` and `true` all mean text on the node."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v)
    raise TypeError(type(v).__name__)


def parse_sysconfigs(
    raw: Any,
    where: str,
    validators: Mapping[str, ModelValidator] | None,
) -> tuple[SysConfigs, list[Problem]]:
    """Parse a sysconfigs/upgradeconfigs block, collecting every problem.

    `validators` maps each installed model to its validator (S1 needs the list);
    None skips the model checks (used when no plugin host is at hand).
    """
    problems: list[Problem] = []
    if raw is None:
        return SysConfigs(), problems
    if not isinstance(raw, Mapping):
        return SysConfigs(), [Problem(where, "S0", "must be a mapping with version and configs")]
    version = raw.get("version", "")
    if version is None:
        version = ""
    if not isinstance(version, (str, int, float)) or isinstance(version, bool):
        problems.append(Problem(f"{where}.version", "C2", "must be a string"))
        version = ""
    raw_configs = raw.get("configs") or []
    if not isinstance(raw_configs, list):
        problems.append(Problem(f"{where}.configs", "S0", "must be a list"))
        raw_configs = []
    configs: list[SettingsConfig] = []
    for i, rc in enumerate(raw_configs):
        cwhere = f"{where}.configs[{i}]"
        config, cprobs = _parse_config(rc, cwhere)
        problems += cprobs
        if config is None:
            continue
        configs.append(config)
        if validators is None:
            continue
        validator = validators.get(config.model)
        if validator is None:
            installed = ", ".join(sorted(validators)) or "none"
            problems.append(
                Problem(
                    f"{cwhere}.model",
                    "S1",
                    f"unknown settings model {config.model!r} (installed: {installed})",
                )
            )
            continue
        for p in validator(config):
            problems.append(
                Problem(f"{cwhere}.{p.field}" if p.field else cwhere, p.rule, p.message)
            )
    return SysConfigs(str(version), tuple(configs)), problems


def _parse_config(rc: Any, where: str) -> tuple[SettingsConfig | None, list[Problem]]:
    problems: list[Problem] = []
    if not isinstance(rc, Mapping):
        return None, [Problem(where, "S0", "must be a mapping with model and contents")]
    model = rc.get("model")
    if not isinstance(model, str) or not model:
        problems.append(Problem(f"{where}.model", "S1", "must name a settings model"))
        model = ""
    configpath = rc.get("configpath")
    if configpath is not None and (
        not isinstance(configpath, str) or not configpath.startswith("/")
    ):
        problems.append(Problem(f"{where}.configpath", "P2", "must be an absolute path"))
        configpath = None
    elif isinstance(configpath, str) and ".." in configpath.split("/"):
        problems.append(Problem(f"{where}.configpath", "P2", "must not contain '..'"))
        configpath = None
    if configpath == "":
        configpath = None
    raw_contents = rc.get("contents") or []
    if not isinstance(raw_contents, list):
        problems.append(Problem(f"{where}.contents", "S0", "must be a list"))
        raw_contents = []
    items: list[SettingItem] = []
    for j, ri in enumerate(raw_contents):
        iwhere = f"{where}.contents[{j}]"
        item, iprobs = _parse_item(ri, iwhere)
        problems += iprobs
        if item is not None:
            items.append(item)
    if not model:
        return None, problems
    return SettingsConfig(model=model, contents=tuple(items), configpath=configpath), problems


def _parse_item(ri: Any, where: str) -> tuple[SettingItem | None, list[Problem]]:
    problems: list[Problem] = []
    if not isinstance(ri, Mapping):
        return None, [Problem(where, "S0", "must be a mapping with key, value, operation")]
    try:
        key = _scalar(ri.get("key"))
    except TypeError:
        key = None
    if not key:
        problems.append(Problem(f"{where}.key", "S2", "must not be empty"))
    elif "=" in key:
        problems.append(Problem(f"{where}.key", "S2", f"must not contain '=' (got {key!r})"))
    elif "\x00" in key or "\n" in key:
        problems.append(Problem(f"{where}.key", "S2", "must not contain NUL or newline"))
    try:
        value = _scalar(ri.get("value"))
    except TypeError:
        problems.append(Problem(f"{where}.value", "S3", "must be a string or number"))
        value = None
    if value is not None and ("\x00" in value or "\n" in value):
        problems.append(Problem(f"{where}.value", "S3", "must not contain NUL or newline"))
    operation = ri.get("operation")
    if operation in ("", None):
        operation = None
    elif operation != DELETE:
        problems.append(
            Problem(f"{where}.operation", "S4", f"only 'delete' is accepted (got {operation!r})")
        )
    if problems:
        return None, problems
    assert key is not None
    return SettingItem(key=key, value=value, operation=operation), problems


def key_value_rules(config: SettingsConfig) -> list[Problem]:
    """S3 for models whose parameters are always key=value (sysctl and friends)."""
    return [
        Problem(f"contents[{i}].value", "S3", f"must not be empty for key {item.key!r}")
        for i, item in enumerate(config.contents)
        if not item.value
    ]


@dataclass
class ApplyReport:
    """C5/S6: what a config run changed before it stopped, and why it stopped."""

    changes: list[Any] = field(default_factory=list)
    failed: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None
