"""kernel.sysctl.persist on real files: in-place edits that keep everything else (P1-P3, S5)."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kubeos.configapply import apply_sysconfigs
from kubeos.contracts import NodeContext
from kubeos.errors import SettingError
from kubeos.models.settings import SettingItem, SettingsConfig, parse_sysconfigs

MODEL = "kernel.sysctl.persist"
SYSCTL_CONF = textwrap.dedent("""\
    # /etc/sysctl.conf - Configuration file for setting system variables
    # See /etc/sysctl.d/ for additional system variables.

    ; ip forwarding for the CNI
    net.ipv4.ip_forward=0
    kernel.pid_max = 65536
    -net.ipv6.conf.all.forwarding = 1
    vm/max_map_count = 65530
    net.ipv4.ip_local_port_range = 32768\t60999
    this line is not a setting
""")


def apply(plugins, node: NodeContext, contents: list[dict[str, Any]], configpath=None):
    config: dict[str, Any] = {"model": MODEL, "contents": contents}
    if configpath is not None:
        config["configpath"] = configpath
    sc, problems = parse_sysconfigs(
        {"version": "1", "configs": [config]}, "sysconfigs", plugins.model_validators()
    )
    assert problems == []
    return apply_sysconfigs(plugins, sc, node)


@pytest.fixture
def conf(node: NodeContext) -> Path:
    path = node.host_path("/etc/sysctl.conf")
    path.write_text(SYSCTL_CONF)
    path.chmod(0o600)
    return path


def test_p3_update_add_keeps_comments_order_and_other_lines(plugins, node, conf) -> None:
    report = apply(
        plugins,
        node,
        [
            {"key": "net.ipv4.ip_forward", "value": "1"},
            {"key": "kernel.pid_max", "value": 65536},
            {"key": "vm.max_map_count", "value": "262144"},
            {"key": "net.ipv6.conf.all.forwarding", "value": "0"},
            {"key": "net.ipv4.ip_local_port_range", "value": "32768 60999"},
            {"key": "user.max_user_namespaces", "value": "16384"},
        ],
    )
    assert report.ok, report.failed
    assert [(c.key, c.action, c.old, c.new) for c in report.changes] == [
        ("net.ipv4.ip_forward", "updated", "0", "1"),
        ("kernel.pid_max", "unchanged", "65536", "65536"),
        ("vm.max_map_count", "updated", "65530", "262144"),
        ("net.ipv6.conf.all.forwarding", "updated", "1", "0"),
        ("net.ipv4.ip_local_port_range", "unchanged", "32768\t60999", "32768 60999"),
        ("user.max_user_namespaces", "added", None, "16384"),
    ]
    assert (
        conf.read_text()
        == SYSCTL_CONF.replace("ip_forward=0", "ip_forward=1")
        .replace("vm/max_map_count = 65530", "vm/max_map_count = 262144")
        .replace("all.forwarding = 1", "all.forwarding = 0")
        + "user.max_user_namespaces = 16384\n"
    )
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600, "atomic_write keeps the file's mode"


def test_p3_append_to_file_without_final_newline_and_duplicates(plugins, node, conf) -> None:
    conf.write_text("# x\nkernel.pid_max = 1\nkernel.pid_max = 2")
    report = apply(
        plugins,
        node,
        [{"key": "kernel.pid_max", "value": "3"}, {"key": "fs.file-max", "value": "9"}],
    )
    assert report.ok
    assert report.changes[0].old == "2", "the last copy is what sysctl applies"
    assert conf.read_text() == "# x\nkernel.pid_max = 3\nkernel.pid_max = 3\nfs.file-max = 9\n"


def test_s5_delete_only_on_exact_key_and_value(plugins, node, conf, caplog) -> None:
    report = apply(
        plugins,
        node,
        [
            {"key": "net.ipv4.ip_forward", "value": "1", "operation": "delete"},
            {"key": "kernel.pid_max", "value": "65536", "operation": "delete"},
            {"key": "net.ipv4.tcp_tw_recycle", "value": "0", "operation": "delete"},
        ],
    )
    assert report.ok
    assert [(c.key, c.action) for c in report.changes] == [
        ("net.ipv4.ip_forward", "unchanged"),
        ("kernel.pid_max", "deleted"),
        ("net.ipv4.tcp_tw_recycle", "unchanged"),
    ]
    assert "not deleted (S5)" in report.changes[0].note
    assert "is '0', not '1'; not deleted (S5)" in caplog.text
    assert conf.read_text() == SYSCTL_CONF.replace("kernel.pid_max = 65536\n", "")


def test_s5_mismatch_only_leaves_the_file_untouched(plugins, node, conf) -> None:
    before = conf.stat()
    report = apply(
        plugins, node, [{"key": "net.ipv4.ip_forward", "value": "1", "operation": "delete"}]
    )
    assert report.ok and report.changes[0].action == "unchanged"
    after = conf.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_p2_configpath_new_file_under_host_root(plugins, node) -> None:
    report = apply(
        plugins, node, [{"key": "user.max_user_namespaces", "value": "16384"}], "/etc/persist.conf"
    )
    assert report.ok
    created = node.host_path("/etc/persist.conf")
    assert created.read_text() == "user.max_user_namespaces = 16384\n"
    assert stat.S_IMODE(created.stat().st_mode) == 0o644
    assert not Path("/etc/persist.conf").exists() or Path("/etc/persist.conf").samefile(created)


def test_p2_missing_parent_directory_is_a_clear_error(plugins, node) -> None:
    report = apply(
        plugins, node, [{"key": "a.b", "value": "1"}], "/etc/sysctl.d/no/such/dir/99-k.conf"
    )
    assert isinstance(report.failed, SettingError)
    assert report.failed.model == MODEL
    assert "directory" in report.failed.reason and "does not exist (P2" in report.failed.reason
    assert not node.host_path("/etc/sysctl.d").exists()


def test_p2_configpath_must_be_absolute_and_stay_under_host_root(plugins, node, tmp_path) -> None:
    validators = plugins.model_validators()
    for bad in ("etc/x.conf", "/etc/../../x.conf"):
        _, problems = parse_sysconfigs(
            {"configs": [{"model": MODEL, "configpath": bad, "contents": []}]}, "s", validators
        )
        assert [(p.field, p.rule) for p in problems] == [("s.configs[0].configpath", "P2")]
    # A link on the node must not redirect the write elsewhere (even inside the host root).
    outside = tmp_path / "outside.conf"
    outside.write_text("kernel.pid_max = 1\n")
    os.symlink(outside, node.host_path("/etc/linked.conf"))
    report = apply(plugins, node, [{"key": "kernel.pid_max", "value": "2"}], "/etc/linked.conf")
    assert "symbolic link" in str(report.failed)
    os.symlink(tmp_path, node.host_path("/etc/escape"))
    report = apply(plugins, node, [{"key": "kernel.pid_max", "value": "2"}], "/etc/escape/x.conf")
    assert "outside the host root" in str(report.failed)
    assert outside.read_text() == "kernel.pid_max = 1\n"
    assert not (tmp_path / "x.conf").exists()


def test_validation_names_fields_and_rules(plugins) -> None:
    _, problems = parse_sysconfigs(
        {
            "configs": [
                {
                    "model": MODEL,
                    "contents": [
                        {"key": "kernel.pid_max"},
                        {"key": "a..b", "value": "1"},
                        {"key": "net.ipv4.ip_forward", "operation": "delete"},
                        {"key": "x=y", "value": "1"},
                    ],
                }
            ]
        },
        "spec.sysconfigs",
        plugins.model_validators(),
    )
    assert sorted((p.field, p.rule) for p in problems) == [
        ("spec.sysconfigs.configs[0].contents[0].value", "S3"),
        ("spec.sysconfigs.configs[0].contents[1].key", "S2"),
        ("spec.sysconfigs.configs[0].contents[2].value", "S3"),
        ("spec.sysconfigs.configs[0].contents[3].key", "S2"),
    ]


def test_unvalidated_bad_item_stops_after_writing_the_ones_before(plugins, node, conf) -> None:
    """C5 inside one block: the hook called directly still stops at the bad item."""
    caller = plugins.owner_hook("kubeos_apply_setting", plugins.model_owner(MODEL))
    config = SettingsConfig(
        MODEL,
        (
            SettingItem("kernel.pid_max", "4096"),
            SettingItem("kernel.threads-max", ""),
            SettingItem("vm.swappiness", "10"),
        ),
    )
    with pytest.raises(SettingError) as err:
        caller(model=MODEL, config=config, node=node)
    assert err.value.key == "kernel.threads-max"
    assert [c.key for c in err.value.applied] == ["kernel.pid_max"]
    text = conf.read_text()
    assert "kernel.pid_max = 4096" in text and "swappiness" not in text


def test_bytes_that_are_not_utf8_survive_an_edit(plugins, node, conf) -> None:
    conf.write_bytes(b"# caf\xe9 latin-1 comment\nkernel.pid_max = 1\n")
    report = apply(plugins, node, [{"key": "kernel.pid_max", "value": "2"}])
    assert report.ok
    assert conf.read_bytes() == b"# caf\xe9 latin-1 comment\nkernel.pid_max = 2\n"
