"""The three add-on settings packages are not part of the product install (scripts/setup):
their behaviour tests import them from their source trees and register them the way a site
registers a plugin; test_install.py proves the pip install + entry point route."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kubeos.contracts import NodeContext
from kubeos.plugins import PluginHost

REPO = Path(__file__).resolve().parents[2]
ADDONS = {
    "settings_kubelet": "kubeos_settings_kubelet",
    "settings_containerd": "kubeos_settings_containerd",
    "settings_pam_limits": "kubeos_settings_pam_limits",
}


def import_from_source(folder: str, module: str) -> ModuleType:
    """Import an add-on from its source tree without putting that tree on sys.path.

    A source tree on sys.path would expose any `*.egg-info` a wheel build left there, and
    every later entry-point scan in the session would then "find" the add-on installed.
    """
    if module in sys.modules:
        return sys.modules[module]
    pkg = REPO / "plugins" / folder / module
    spec = importlib.util.spec_from_file_location(
        module, pkg / "__init__.py", submodule_search_locations=[str(pkg)]
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def addon_host() -> PluginHost:
    host = PluginHost().load_entry_points()
    for folder, module in ADDONS.items():
        if module not in host.plugins:
            host.register(import_from_source(folder, module), name=folder)
    return host


@pytest.fixture
def node(tmp_path: Path) -> NodeContext:
    root = tmp_path / "host"
    root.mkdir()
    return NodeContext(host_root=root, proc_sys=tmp_path / "proc-sys")
