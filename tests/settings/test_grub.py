"""grub.cmdline.current / grub.cmdline.next on a real KubeOS grub.cfg (B1-B6, S5)."""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest

from kubeos.configapply import apply_sysconfigs
from kubeos.contracts import NodeContext
from kubeos.errors import SettingError
from kubeos.models.settings import SettingItem, SettingsConfig, parse_sysconfigs

from .conftest import grub_cfg, linux_line, make_host

CURRENT, NEXT = "grub.cmdline.current", "grub.cmdline.next"
BASE = (
    "linux /boot/vmlinuz root={} ro rootfstype=ext4 nomodeset quiet oops=panic softlockup_panic=1"
    " nmi_watchdog=1 rd.shell=0 selinux=0 crashkernel=256M panic=3"
)
UUID_EXAMPLE = "UUID=e4f1b0a0-590e-4c5f-9d8a-3a2c7b8e2d94"
UUID_A = "0b3c5a1e-6f0d-4f7e-9a55-2c1d4e6f8a01"
UUID_B = "7d2e9c40-1b3a-4c8d-8e6f-5a4b3c2d1e0f"
PARTUUID_A = "8f6a1c2d-0e3b-4a5c-9d7e-112233445566"
PARTUUID_B = "8f6a1c2d-0e3b-4a5c-9d7e-665544332211"


def apply(plugins, node: NodeContext, *configs: tuple[str, list[dict[str, Any]]]):
    sc, problems = parse_sysconfigs(
        {"version": "1", "configs": [{"model": m, "contents": c} for m, c in configs]},
        "sysconfigs",
        plugins.model_validators(),
    )
    assert problems == []
    return apply_sysconfigs(plugins, sc, node)


def problems_of(plugins, contents: list[dict[str, Any]], model: str = CURRENT) -> list[tuple]:
    _, problems = parse_sysconfigs(
        {"configs": [{"model": model, "contents": contents}]}, "s", plugins.model_validators()
    )
    return [(p.field.removeprefix("s.configs[0]."), p.rule, p.message) for p in problems]


@pytest.mark.parametrize(
    ("running", "root_a", "root_b", "current"),
    [
        ("/dev/vda2", "/dev/vda2", "/dev/vda3", "A"),
        ("/dev/vda3", "/dev/vda2", "/dev/vda3", "B"),
        ("/dev/nvme0n1p3", "/dev/nvme0n1p2", "/dev/nvme0n1p3", "B"),
        (f"UUID={UUID_B.upper()}", f"UUID={UUID_A}", f"UUID={UUID_B}", "B"),
        (f"PARTUUID={PARTUUID_A}", f"PARTUUID={PARTUUID_A}", f"PARTUUID={PARTUUID_B}", "A"),
    ],
    ids=["device-A", "device-B", "nvme-B", "uuid-B", "partuuid-A"],
)
def test_b2_current_and_next_follow_the_running_root(
    plugins, tmp_path, running, root_a, root_b, current
) -> None:
    node = make_host(tmp_path / "host", running, grub_cfg(root_a, root_b))
    other = "B" if current == "A" else "A"
    report = apply(
        plugins,
        node,
        (CURRENT, [{"key": "selinux", "value": "1"}]),
        (NEXT, [{"key": "nomodeset", "operation": "delete"}]),
    )
    assert report.ok, report.failed
    assert [c.note for c in report.changes] == [f"entry {current}", f"entry {other}"]
    roots = {"A": root_a, "B": root_b}
    assert linux_line(node, current) == BASE.format(roots[current]).replace(
        "selinux=0", "selinux=1"
    )
    assert linux_line(node, other) == BASE.format(roots[other]).replace(" nomodeset", "")


def test_b2_udev_links_translate_a_device_to_uuid_entries(plugins, tmp_path) -> None:
    node = make_host(tmp_path / "host", "/dev/sda3", grub_cfg(f"UUID={UUID_A}", f"UUID={UUID_B}"))
    links = node.host_path("/dev/disk/by-uuid")
    links.mkdir(parents=True)
    os.symlink("../../sda2", links / UUID_A)
    os.symlink("../../sda3", links / UUID_B)
    report = apply(plugins, node, (CURRENT, [{"key": "quiet", "operation": "delete"}]))
    assert report.ok, report.failed
    assert "quiet" not in linux_line(node, "B") and " quiet " in linux_line(node, "A")


def test_b2_unknown_running_root_is_refused_without_a_change(plugins, tmp_path) -> None:
    node = make_host(tmp_path / "host", "/dev/sdb7")
    before = node.grub_cfg.read_text()
    report = apply(plugins, node, (CURRENT, [{"key": "selinux", "value": "1"}]))
    assert isinstance(report.failed, SettingError) and report.changes == []
    assert "running root=/dev/sdb7 matches neither grub entry" in report.failed.reason
    assert "A: root=/dev/vda2, B: root=/dev/vda3" in report.failed.reason
    assert node.grub_cfg.read_text() == before


def test_b3_pinned_current_wins_over_the_booted_partition(plugins, tmp_path) -> None:
    """Dispatched on A, applied after the reboot into B: current still means A."""
    node = make_host(tmp_path / "host", "/dev/vda3")
    node.pinned_current = "A"
    report = apply(
        plugins,
        node,
        (CURRENT, [{"key": "crash_kexec_post_notifiers"}]),
        (NEXT, [{"key": "rd.shell", "value": "1"}]),
    )
    assert report.ok, report.failed
    assert linux_line(node, "A").endswith("panic=3 crash_kexec_post_notifiers")
    assert "rd.shell=1" in linux_line(node, "B") and "rd.shell=0" in linux_line(node, "A")


def test_b4_values_with_equals_and_only_the_linux_line_changes(plugins, node) -> None:
    before = node.grub_cfg.read_text()
    report = apply(
        plugins,
        node,
        (
            CURRENT,
            [
                {"key": "root", "value": "UUID=e4f1b0a0-590e-4c5f-9d8a-3a2c7b8e2d94"},
                {"key": "rd.lvm.lv", "value": "vg0/root=x"},
                {"key": "root", "value": "UUID=e4f1b0a0-590e-4c5f-9d8a-3a2c7b8e2d94"},
            ],
        ),
    )
    assert report.ok, report.failed
    assert [(c.action, c.old, c.new) for c in report.changes] == [
        (
            "updated",
            "root=/dev/vda2",
            "root=UUID=e4f1b0a0-590e-4c5f-9d8a-3a2c7b8e2d94",
        ),
        ("added", None, "rd.lvm.lv=vg0/root=x"),
        ("unchanged", f"root={UUID_EXAMPLE}", f"root={UUID_EXAMPLE}"),
    ]
    after = node.grub_cfg.read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        (
            "\t" + BASE.format("/dev/vda2"),
            "\t"
            + BASE.format("UUID=e4f1b0a0-590e-4c5f-9d8a-3a2c7b8e2d94")
            + " rd.lvm.lv=vg0/root=x",
        )
    ]
    assert stat.S_IMODE(node.grub_cfg.stat().st_mode) == 0o600


def test_b4_syntax_is_checked_before_anything_runs(plugins) -> None:
    assert problems_of(
        plugins,
        [
            {"key": "selinux", "value": ""},
            {"key": "console", "value": "tty0 init=/bin/sh"},
            {"key": "x$(reboot)", "value": "1"},
            {"key": "root", "value": "UUID=ok=fine"},
            {"key": "quiet"},
        ],
    ) == [
        (
            "contents[0].value",
            "B4",
            "must not be empty for key 'selinux'; omit value for a bare parameter",
        ),
        (
            "contents[1].value",
            "B4",
            "'tty0 init=/bin/sh' must not contain whitespace, quotes or grub script characters",
        ),
        (
            "contents[2].key",
            "B4",
            "'x$(reboot)' must not contain whitespace, quotes or grub script characters",
        ),
    ]


def test_b5_two_forms_of_one_key_in_one_config_are_refused(plugins, node) -> None:
    found = problems_of(
        plugins,
        [{"key": "rd.info", "value": "0", "operation": "delete"}, {"key": "rd.info"}],
        NEXT,
    )
    assert [(f, r) for f, r, _ in found] == [("contents[1].value", "B5")]
    assert "appears as key=value in contents[0] and as a bare key here" in found[0][2]
    # the same through the hook directly (no validation first): nothing is touched
    before = node.grub_cfg.read_text()
    caller = plugins.owner_hook("kubeos_apply_setting", plugins.model_owner(CURRENT))
    config = SettingsConfig(
        CURRENT, (SettingItem("panic", "3", "delete"), SettingItem("panic", None))
    )
    with pytest.raises(SettingError, match=r"\[B5\]") as err:
        caller(model=CURRENT, config=config, node=node)
    assert err.value.key == "panic" and err.value.applied == []
    assert node.grub_cfg.read_text() == before


def test_b5_direct_update_between_forms_is_refused_then_two_steps_work(plugins, node) -> None:
    report = apply(
        plugins,
        node,
        (CURRENT, [{"key": "selinux", "value": "1"}, {"key": "panic"}, {"key": "quiet"}]),
    )
    assert report.failed.key == "panic"
    assert "'panic=3' is on entry A's linux line; turning it into 'panic'" in report.failed.reason
    assert "(B5)" in report.failed.reason
    assert [c.key for c in report.changes] == ["selinux"]
    assert "selinux=1" in linux_line(node, "A") and "panic=3" in linux_line(node, "A")

    report = apply(plugins, node, (CURRENT, [{"key": "quiet", "value": "1"}]))
    assert "'quiet' is on entry A's linux line; turning it into 'quiet=1'" in report.failed.reason

    # the supported way: delete key=value, then add the bare key in a later config
    report = apply(
        plugins,
        node,
        (CURRENT, [{"key": "panic", "value": "3", "operation": "delete"}]),
        (CURRENT, [{"key": "panic"}]),
    )
    assert report.ok, report.failed
    assert linux_line(node, "A").endswith("crashkernel=256M panic")


def test_b6_delete_needs_exact_value_bare_key_by_key_alone(plugins, node) -> None:
    report = apply(
        plugins,
        node,
        (
            NEXT,
            [
                {"key": "panic", "value": "5", "operation": "delete"},
                {"key": "quiet", "operation": "delete"},
                {"key": "absent", "operation": "delete"},
                {"key": "oops", "value": "panic", "operation": "delete"},
            ],
        ),
    )
    assert report.ok
    assert [(c.key, c.action) for c in report.changes] == [
        ("panic", "unchanged"),
        ("quiet", "deleted"),
        ("absent", "unchanged"),
        ("oops", "deleted"),
    ]
    assert "present as 'panic=3', not 'panic=5'; not deleted (S5/B6)" in report.changes[0].note
    assert linux_line(node, "B") == BASE.format("/dev/vda3").replace(" quiet", "").replace(
        " oops=panic", ""
    )
    assert linux_line(node, "A") == BASE.format("/dev/vda2")


def test_repeated_key_is_not_guessed(plugins, tmp_path) -> None:
    cfg = grub_cfg().replace("panic=3\n", "panic=3 console=tty0 console=ttyS0,115200\n", 1)
    node = make_host(tmp_path / "host", cfg=cfg)
    report = apply(plugins, node, (CURRENT, [{"key": "console", "value": "ttyS1"}]))
    assert "appears 2 times" in report.failed.reason
    report = apply(plugins, node, (CURRENT, [{"key": "console", "value": "ttyS0,115200"}]))
    assert report.ok and report.changes[0].action == "unchanged"


def test_grub_cfg_without_both_entries_is_a_clear_error(plugins, tmp_path) -> None:
    cfg = grub_cfg().split("menuentry 'B'")[0]
    node = make_host(tmp_path / "host", cfg=cfg)
    report = apply(plugins, node, (NEXT, [{"key": "quiet"}]))
    assert "no menu entry 'B' with a linux line (found: 'A')" in report.failed.reason
    missing = make_host(tmp_path / "other")
    missing.grub_cfg.unlink()
    report = apply(plugins, missing, (NEXT, [{"key": "quiet"}]))
    assert "cannot read grub.cfg" in report.failed.reason


def test_crlf_file_and_bad_pin_are_handled(plugins, tmp_path) -> None:
    node = make_host(tmp_path / "host", cfg=grub_cfg().replace("\n", "\r\n"))
    report = apply(plugins, node, (NEXT, [{"key": "quiet", "operation": "delete"}]))
    assert report.ok, report.failed
    text = node.grub_cfg.read_bytes()
    assert text.count(b"\r\n") == grub_cfg().count("\n") and b"\n" not in text.replace(b"\r\n", b"")
    node.pinned_current = "C"
    report = apply(plugins, node, (CURRENT, [{"key": "quiet"}]))
    assert "pinned current 'C' must be 'A' or 'B'" in report.failed.reason
