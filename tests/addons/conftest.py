"""The three add-on settings packages are not part of the product install (scripts/setup):
their behaviour tests import them from their source trees and register them the way a site
registers a plugin; test_install.py proves the pip install + entry point route."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from kubeos.contracts import NodeContext
from kubeos.plugins import PluginHost

REPO = Path(__file__).resolve().parents[2]
ADDONS = {
    "settings_kubelet": "kubeos_settings_kubelet",
    "settings_containerd": "kubeos_settings_containerd",
    "settings_pam_limits": "kubeos_settings_pam_limits",
}


@pytest.fixture(scope="session")
def addon_host() -> PluginHost:
    host = PluginHost().load_entry_points()
    for folder, module in ADDONS.items():
        if module not in host.plugins:
            src = str(REPO / "plugins" / folder)
            if src not in sys.path:
                sys.path.insert(0, src)
            host.register(importlib.import_module(module), name=folder)
    return host


@pytest.fixture
def node(tmp_path: Path) -> NodeContext:
    root = tmp_path / "host"
    root.mkdir()
    return NodeContext(host_root=root, proc_sys=tmp_path / "proc-sys")
