"""S6/C5 across models: in order, stop at the first failure, report what went before."""

from __future__ import annotations

from pathlib import Path

from kubeos.configapply import apply_sysconfigs
from kubeos.errors import SettingError
from kubeos.models.settings import parse_sysconfigs

from .conftest import linux_line


def fake_proc_sys(root: Path, values: dict[str, str]) -> None:
    for key, value in values.items():
        f = root.joinpath(*key.split("."))
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(value + "\n")


def test_first_failure_stops_and_names_model_key_reason(plugins, node) -> None:
    fake_proc_sys(node.proc_sys, {"net.ipv4.ip_forward": "0", "vm.swappiness": "60"})
    sc, problems = parse_sysconfigs(
        {
            "version": "7",
            "configs": [
                {
                    "model": "kernel.sysctl.persist",
                    "contents": [{"key": "kernel.pid_max", "value": "4194304"}],
                },
                {
                    "model": "grub.cmdline.current",
                    "contents": [
                        {"key": "selinux", "value": "1"},
                        {"key": "quiet", "value": "1"},  # bare on the line: B5 refuses
                        {"key": "nomodeset", "operation": "delete"},
                    ],
                },
                {"model": "kernel.sysctl", "contents": [{"key": "vm.swappiness", "value": "1"}]},
            ],
        },
        "spec.sysconfigs",
        plugins.model_validators(),
    )
    assert problems == []
    report = apply_sysconfigs(plugins, sc, node)

    assert isinstance(report.failed, SettingError)
    assert (report.failed.model, report.failed.key) == ("grub.cmdline.current", "quiet")
    assert "(B5)" in report.failed.reason
    # before the failure: applied and reported (C5: not undone)
    assert [(c.model, c.key, c.action) for c in report.changes] == [
        ("kernel.sysctl.persist", "kernel.pid_max", "added"),
        ("grub.cmdline.current", "selinux", "updated"),
    ]
    assert node.host_path("/etc/sysctl.conf").read_text() == "kernel.pid_max = 4194304\n"
    line = linux_line(node, "A")
    assert "selinux=1" in line and " quiet " in line and " nomodeset " in line
    # after the failure: not tried
    assert (node.proc_sys / "vm" / "swappiness").read_text() == "60\n"


def test_sysctl_failure_inside_a_block_keeps_the_items_before(plugins, node) -> None:
    fake_proc_sys(node.proc_sys, {"net.ipv4.ip_forward": "0", "vm.swappiness": "60"})
    sc, _ = parse_sysconfigs(
        {
            "version": "8",
            "configs": [
                {
                    "model": "kernel.sysctl",
                    "contents": [
                        {"key": "net.ipv4.ip_forward", "value": "1"},
                        {"key": "net.core.no_such", "value": "1"},
                        {"key": "vm.swappiness", "value": "1"},
                    ],
                }
            ],
        },
        "s",
        plugins.model_validators(),
    )
    report = apply_sysconfigs(plugins, sc, node)
    assert (report.failed.model, report.failed.key) == ("kernel.sysctl", "net.core.no_such")
    assert "no such kernel parameter 'net.core.no_such'" in report.failed.reason
    assert [(c.key, c.old, c.new) for c in report.changes] == [("net.ipv4.ip_forward", "0", "1")]
    assert (node.proc_sys / "vm" / "swappiness").read_text() == "60\n"
