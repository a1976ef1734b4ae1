"""The plugin host: entry-point discovery, ownership claims, broken plugins (issue 2)."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import yaml

from kubeos.contracts import Provides
from kubeos.errors import PluginConflict
from kubeos.hooks import hookimpl
from kubeos.models.os import parse_os
from kubeos.plugins import PluginHost

from .conftest import write_distribution

BUILTIN_DISTS = {
    "kubeos-image-disk": ("disk",),
    "kubeos-image-docker": ("docker",),
    "kubeos-image-containerd": ("containerd",),
}
BUILTIN_MODELS = {
    "kubeos-settings-sysctl": ("kernel.sysctl", "kernel.sysctl.persist"),
    "kubeos-settings-grub": ("grub.cmdline.current", "grub.cmdline.next"),
}

THIRD_PARTY_MODEL = """
from kubeos.contracts import Provides
from kubeos.errors import Problem
from kubeos.hooks import hookimpl

@hookimpl
def kubeos_provides():
    return Provides(setting_models=("acme.motd",))

@hookimpl
def kubeos_validate_setting(model, config):
    return [Problem(f"contents[{i}].value", "ACME1", "motd lines must be short")
            for i, item in enumerate(config.contents) if len(item.value or "") > 20]
"""


def test_installed_plugins_are_found_through_entry_points() -> None:
    host = PluginHost().load_entry_points()
    by_dist = {info.distribution: info for info in host.plugins.values()}
    for dist, types in BUILTIN_DISTS.items():
        assert by_dist[dist].provides.image_types == types
    for dist, models in BUILTIN_MODELS.items():
        assert by_dist[dist].provides.setting_models == models
    assert sorted(host.image_types) == ["containerd", "disk", "docker"]
    assert len(host.setting_models) == 4
    assert host.failures == []
    # The host's defaults are ordinary plugins, registered from the core's own entry points.
    assert {"builtin_partition", "builtin_bootloader", "builtin_reboot", "builtin_verify"} <= set(
        host.plugins
    )


def test_list_plugins_cli_shows_five_packages(agent_cli) -> None:
    out = agent_cli("list-plugins", "--output", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    dists = {p["distribution"]: p for p in data["plugins"]}
    assert set(BUILTIN_DISTS) | set(BUILTIN_MODELS) <= set(dists)
    assert all(dists[d]["version"] == "0.1.0" for d in BUILTIN_DISTS)
    image_types = sorted(t for p in data["plugins"] for t in p["image_types"])
    models = sorted(m for p in data["plugins"] for m in p["setting_models"])
    assert image_types == ["containerd", "disk", "docker"]
    assert models == sorted(m for ms in BUILTIN_MODELS.values() for m in ms)

    text = agent_cli("list-plugins")
    assert text.returncode == 0
    assert "kubeos-settings-grub" in text.stdout
    assert "image types: containerd, disk, docker" in text.stdout


def test_third_party_model_added_by_installing_a_distribution(site: Path, agent_cli) -> None:
    """A third party adds a model with pip install + entry point; the core is untouched."""
    before = json.loads(agent_cli("list-plugins", "-o", "json").stdout)
    assert "acme.motd" not in {m for p in before["plugins"] for m in p["setting_models"]}

    write_distribution(site, "acme-kubeos-motd", "acme_motd", THIRD_PARTY_MODEL)
    after = json.loads(agent_cli("list-plugins", "-o", "json").stdout)
    acme = [p for p in after["plugins"] if p["distribution"] == "acme-kubeos-motd"]
    assert acme and acme[0]["setting_models"] == ["acme.motd"] and acme[0]["version"] == "1.2.3"

    # Its own validation rules take part in `validate`.
    os_doc = {
        "apiVersion": "upgrade.openeuler.org/v1alpha1",
        "kind": "OS",
        "metadata": {"name": "motd"},
        "spec": {
            "imagetype": "",
            "opstype": "config",
            "osversion": "KubeOS 1.0.0",
            "maxunavailable": 1,
            "sysconfigs": {
                "version": "1",
                "configs": [{"model": "acme.motd", "contents": [{"key": "l1", "value": "x" * 30}]}],
            },
        },
    }
    f = site.parent / "motd.yaml"
    f.write_text(yaml.safe_dump(os_doc))
    bad = agent_cli("validate", "-f", str(f))
    assert bad.returncode == 1
    assert "spec.sysconfigs.configs[0].contents[0].value" in bad.stderr and "ACME1" in bad.stderr
    os_doc["spec"]["sysconfigs"]["configs"][0]["contents"][0]["value"] = "hello"
    f.write_text(yaml.safe_dump(os_doc))
    good = agent_cli("validate", "-f", str(f))
    assert good.returncode == 0, good.stderr


def test_two_plugins_claiming_one_model_are_refused(site: Path, agent_cli) -> None:
    write_distribution(
        site,
        "rogue-sysctl",
        "rogue_sysctl",
        """
        from kubeos.contracts import Provides
        from kubeos.hooks import hookimpl

        @hookimpl
        def kubeos_provides():
            return Provides(setting_models=("kernel.sysctl",))
        """,
    )
    out = agent_cli("list-plugins")
    assert out.returncode == 3
    assert "settings model 'kernel.sysctl' is claimed by both" in out.stderr
    assert "rogue-sysctl" in out.stderr and "kubeos-settings-sysctl" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_plugin_that_fails_to_import_does_not_take_down_the_others(
    site: Path, agent_cli
) -> None:
    write_distribution(site, "broken-plugin", "broken_plugin", "raise ImportError('no libfoo')\n")
    out = agent_cli("list-plugins", "-o", "json")
    assert out.returncode == 3  # reported as a failure ...
    data = json.loads(out.stdout)
    assert data["failed"] == [
        {
            "name": "broken_plugin",
            "distribution": "broken-plugin",
            "error": "ImportError: no libfoo",
        }
    ]
    # ... while every working plugin is still loaded.
    assert sorted(t for p in data["plugins"] for t in p["image_types"]) == [
        "containerd",
        "disk",
        "docker",
    ]


class _ImageTypeClaim:
    def __init__(self, *types: str) -> None:
        self.types = types

    @hookimpl
    def kubeos_provides(self) -> Provides:
        return Provides(image_types=self.types)


def test_duplicate_image_type_refused_and_host_unchanged() -> None:
    host = PluginHost().load_entry_points()
    before = dict(host.image_types)
    with pytest.raises(PluginConflict, match="image type 'disk' is claimed by both image_disk"):
        host.register(_ImageTypeClaim("oci", "disk"), name="other", distribution="other-dist")
    assert host.image_types == before  # nothing half-registered
    assert "other" not in host.plugins
    host.register(_ImageTypeClaim("oci"), name="oci")
    assert host.image_owner("oci") == "oci"


def test_owner_hooks_reach_only_the_owner() -> None:
    calls: list[str] = []

    class Owner:
        def __init__(self, name: str, model: str) -> None:
            self.name, self.model = name, model

        @hookimpl
        def kubeos_provides(self) -> Provides:
            return Provides(setting_models=(self.model,))

        @hookimpl
        def kubeos_validate_setting(self, model, config):
            calls.append(self.name)
            return []

    host = PluginHost()
    host.register(Owner("a", "m.a"), name="a")
    host.register(Owner("b", "m.b"), name="b")
    validators = host.model_validators()
    doc = {
        "apiVersion": "upgrade.openeuler.org/v1alpha1",
        "kind": "OS",
        "metadata": {"name": "x"},
        "spec": {
            "imagetype": "",
            "opstype": "config",
            "osversion": "v",
            "maxunavailable": 1,
            "sysconfigs": {"version": "1", "configs": [{"model": "m.b", "contents": []}]},
        },
    }
    parse_os(doc, validators)
    assert calls == ["b"]


def test_entry_point_objects_without_distribution_are_loaded() -> None:
    ep = EntryPoint(name="verify2", value="kubeos.builtin.verify", group="kubeos")
    host = PluginHost().load_entry_points([ep])
    assert host.plugins["verify2"].distribution == "?"
