"""pytest fixtures over the support helpers.

Use them from a conftest.py by importing the names (certs, disk_node, disk_tools,
plugin_host_with_recorder) from this module, with `# noqa: F401` on the import line.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubeos.plugins import PluginHost
from tests.support.disk import TestNode, make_node, missing_tools
from tests.support.https import Certs
from tests.support.plugins import RebootRecorder, plugin_host


def require_disk_tools() -> None:
    """Skip the calling test when sfdisk/mke2fs/debugfs/grub-editenv are missing."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup installs them)")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


@pytest.fixture
def disk_tools() -> None:
    """Use with `pytestmark = pytest.mark.usefixtures("disk_tools")` to skip without tools."""
    require_disk_tools()


@pytest.fixture(scope="session")
def certs() -> Certs:
    """One CA + server + client certificate for the whole session (trustme)."""
    return Certs()


@pytest.fixture
def disk_node(tmp_path: Path) -> TestNode:
    """A node booted from root A ("KubeOS 1.0.0"), root B empty, on a GPT disk-image file."""
    require_disk_tools()
    return make_node(tmp_path / "node")


@pytest.fixture
def plugin_host_with_recorder() -> tuple[PluginHost, RebootRecorder]:
    return plugin_host()
