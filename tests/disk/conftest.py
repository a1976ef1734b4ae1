"""Disk-upgrade tests share the support fixtures (real disks, real TLS)."""

from tests.support.fixtures import certs, disk_node, plugin_host_with_recorder  # noqa: F401
