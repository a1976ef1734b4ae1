"""`kubeos-agent config apply` end to end, in a child process, as an admin runs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from .conftest import linux_line, make_host, namespace_argv

#: The example of spec/settings.md ("Examples (from the user guide)"), verbatim.
USER_GUIDE_EXAMPLE = """\
configs:
  - model: kernel.sysctl
    contents:
      - {key: user.max_user_namespaces, value: "16384"}
      - {key: net.ipv4.tcp_tw_recycle, value: "0", operation: delete}   # delete not supported here
  - model: kernel.sysctl.persist
    configpath: /etc/persist.conf
    contents:
      - {key: user.max_user_namespaces, value: "16384"}
      - {key: net.ipv4.tcp_tw_recycle, value: "0", operation: delete}
  - model: grub.cmdline.current
    contents:
      - {key: selinux, value: "0"}
      - {key: root, value: UUID=e4f1b0a0-590e-4c5f-9d8a-3a2c7b8e2d94}
      - {key: panic, value: "3", operation: delete}
      - {key: crash_kexec_post_notifiers}
"""

# Runs the CLI, then reads the kernel value back from inside the same namespaces.
READ_BACK = """\
import subprocess, sys
r = subprocess.run([sys.executable, "-m", "kubeos.cli.agent", *sys.argv[1:]])
print("max_user_namespaces=" + open("/proc/sys/user/max_user_namespaces").read().strip())
sys.exit(r.returncode)
"""

OS_CR = {
    "apiVersion": "upgrade.openeuler.org/v1alpha1",
    "kind": "OS",
    "metadata": {"name": "os-sample", "namespace": "default"},
    "spec": {
        "imagetype": "",
        "opstype": "config",
        "osversion": "KubeOS 1.0.0",
        "maxunavailable": 3,
        "containerimage": "",
        "checksum": "",
        "sysconfigs": {
            "version": "2",
            "configs": [
                {"model": "kernel.sysctl", "contents": [{"key": "vm.swappiness", "value": "10"}]},
                {
                    "model": "grub.cmdline.next",
                    "contents": [{"key": "nomodeset", "operation": "delete"}],
                },
            ],
        },
        "upgradeconfigs": {
            "version": "1",
            "configs": [
                {"model": "grub.cmdline.current", "contents": [{"key": "rd.shell", "value": "1"}]}
            ],
        },
    },
}


def agent(*args: str | Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "kubeos.cli.agent", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def proc_tree(root: Path) -> Path:
    (root / "vm").mkdir(parents=True)
    (root / "vm" / "swappiness").write_text("60\n")
    return root


def test_user_guide_example_verbatim_in_user_and_network_namespaces(tmp_path) -> None:
    """user.max_user_namespaces is per user namespace: `unshare -U -r -n` keeps it private."""
    host_value = Path("/proc/sys/user/max_user_namespaces").read_text()
    node = make_host(tmp_path / "host", running_root="/dev/vda2")
    example = tmp_path / "example.yaml"
    example.write_text(USER_GUIDE_EXAMPLE)
    prefix = namespace_argv("-U", "-r", "-n")
    out = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            READ_BACK,
            "config",
            "apply",
            "-f",
            str(example),
            "--host-root",
            str(node.host_root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "max_user_namespaces=16384" in out.stdout
    assert "kernel.sysctl: user.max_user_namespaces:" in out.stdout
    assert "kernel.sysctl: net.ipv4.tcp_tw_recycle: skipped" in out.stdout
    assert "delete is not supported" in out.stderr
    assert "kernel.sysctl.persist: user.max_user_namespaces: None -> '16384' [added]" in out.stdout
    assert node.host_path("/etc/persist.conf").read_text() == "user.max_user_namespaces = 16384\n"
    assert linux_line(node, "A") == (
        "linux /boot/vmlinuz root=UUID=e4f1b0a0-590e-4c5f-9d8a-3a2c7b8e2d94 ro rootfstype=ext4"
        " nomodeset quiet oops=panic softlockup_panic=1 nmi_watchdog=1 rd.shell=0 selinux=0"
        " crashkernel=256M crash_kexec_post_notifiers"
    )
    assert "root=/dev/vda3" in linux_line(node, "B") and "panic=3" in linux_line(node, "B")
    assert Path("/proc/sys/user/max_user_namespaces").read_text() == host_value


def test_os_cr_blocks_and_pinned_current(tmp_path) -> None:
    node = make_host(tmp_path / "host", running_root="/dev/vda2")
    proc_sys = proc_tree(tmp_path / "proc-sys")
    cr = tmp_path / "os.yaml"
    cr.write_text(yaml.safe_dump(OS_CR))
    out = agent("config", "apply", "-f", cr, "--host-root", node.host_root, "--proc-sys", proc_sys)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "kernel.sysctl: vm.swappiness: '60' -> '10' [set]",
        "grub.cmdline.next: nomodeset: deleted (entry B)",
        "sysconfigs version '2': 2 config(s), 2 setting(s) processed",
    ]
    assert (proc_sys / "vm" / "swappiness").read_text() == "10"

    out = agent(
        "config", "apply", "-f", cr, "--block", "upgradeconfigs", "--pin-current", "B",
        "--host-root", node.host_root, "--proc-sys", proc_sys,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rd.shell=1" in linux_line(node, "B") and "rd.shell=0" in linux_line(node, "A")


def test_invalid_input_applies_nothing(tmp_path) -> None:
    node = make_host(tmp_path / "host")
    proc_sys = proc_tree(tmp_path / "proc-sys")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent("""\
            version: "3"
            configs:
              - model: kernel.sysctl
                contents:
                  - {key: vm.swappiness, value: "1"}
              - model: grub.cmdline.current
                contents:
                  - {key: rd.info, value: "0", operation: delete}
                  - {key: rd.info}
              - model: kernel.sysctl.persist
                contents:
                  - {key: "net..x", value: "1"}
              - model: acme.motd
                contents: []
        """)
    )
    grub_before = node.grub_cfg.read_text()
    out = agent("config", "apply", "-f", bad, "--host-root", node.host_root, "--proc-sys", proc_sys)
    assert out.returncode == 1
    assert "sysconfigs.configs[1].contents[1].value: key 'rd.info' appears as" in out.stderr
    assert "[B5]" in out.stderr
    assert "sysconfigs.configs[2].contents[0].key: must not have empty segments" in out.stderr
    assert "sysconfigs.configs[3].model: unknown settings model 'acme.motd'" in out.stderr
    assert "nothing was applied" in out.stderr
    assert (proc_sys / "vm" / "swappiness").read_text() == "60\n"
    assert node.grub_cfg.read_text() == grub_before

    cr = tmp_path / "os.yaml"
    cr.write_text(yaml.safe_dump({**OS_CR, "spec": {**OS_CR["spec"], "upgradeconfigs": None}}))
    out = agent("config", "apply", "-f", cr, "--block", "upgradeconfigs", "--host-root", tmp_path)
    assert out.returncode == 1 and "spec.upgradeconfigs: is missing" in out.stderr


def test_failure_exits_4_naming_model_key_and_what_was_applied(tmp_path) -> None:
    node = make_host(tmp_path / "host", running_root="/dev/vda3")
    proc_sys = proc_tree(tmp_path / "proc-sys")
    cfg = tmp_path / "fails.yaml"
    cfg.write_text(
        textwrap.dedent("""\
            sysconfigs:
              version: "4"
              configs:
                - model: grub.cmdline.current
                  contents:
                    - {key: selinux, value: "1"}
                - model: kernel.sysctl
                  contents:
                    - {key: vm.swappiness, value: "5"}
                    - {key: vm.no_such_knob, value: "1"}
                - model: kernel.sysctl.persist
                  contents:
                    - {key: vm.swappiness, value: "5"}
        """)
    )
    out = agent("config", "apply", "-f", cfg, "--host-root", node.host_root, "--proc-sys", proc_sys)
    assert out.returncode == 4, out.stderr
    assert (
        "error: sysconfigs version '4' stopped at model kernel.sysctl, key 'vm.no_such_knob':"
        " no such kernel parameter 'vm.no_such_knob'" in out.stderr
    )
    assert "applied before the failure (stays applied, C5):" in out.stderr
    assert "  grub.cmdline.current: selinux: 'selinux=0' -> 'selinux=1' [updated] (entry B)" in (
        out.stderr
    )
    assert "  kernel.sysctl: vm.swappiness: '60' -> '5' [set]" in out.stderr
    assert not node.host_path("/etc/sysctl.conf").exists()
