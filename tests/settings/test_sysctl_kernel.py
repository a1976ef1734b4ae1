"""kernel.sysctl against the real kernel, inside a private network namespace (K1, K2, S4).

Only network-namespaced keys are written, and only inside `unshare -n`: the machine's own
values are read before and after to prove they never moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubeos.contracts import NodeContext
from kubeos.errors import SettingError
from kubeos.models.settings import SettingItem, SettingsConfig

from .conftest import python_in_namespace

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

SNIPPET = """
import json, sys
from pathlib import Path
from kubeos.configapply import apply_sysconfigs
from kubeos.contracts import NodeContext
from kubeos.models.settings import parse_sysconfigs
from kubeos.plugins import PluginHost

host = PluginHost().load_entry_points()
node = NodeContext(host_root=Path(sys.argv[1]))
before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
flip = "0" if before == "1" else "1"
out = {"before": before, "flip": flip}
for name, contents in [
    ("set", [{"key": "net.ipv4.ip_forward", "value": flip},
             {"key": "net.ipv4.ip_local_port_range", "value": "20000 30000"},
             {"key": "net.ipv4.tcp_tw_recycle", "value": "0", "operation": "delete"}]),
    ("again", [{"key": "net.ipv4.ip_forward", "value": flip}]),
    ("missing", [{"key": "net.ipv4.ip_forward", "value": before},
                 {"key": "net.ipv4.no_such_parameter", "value": "1"},
                 {"key": "net.ipv4.ip_forward", "value": flip}]),
    ("refused", [{"key": "net.ipv4.ip_forward", "value": "yes"}]),
]:
    sc, problems = parse_sysconfigs(
        {"version": name, "configs": [{"model": "kernel.sysctl", "contents": contents}]},
        "sysconfigs", host.model_validators())
    assert not problems, problems
    report = apply_sysconfigs(host, sc, node)
    out[name] = {
        "changes": [[c.key, c.action, c.old, c.new] for c in report.changes],
        "failed": None if report.ok else [report.failed.model, report.failed.key,
                                          report.failed.reason],
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "port_range": Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split(),
    }
print(json.dumps(out))
"""


def test_k1_writes_the_running_kernel_in_a_network_namespace(tmp_path: Path) -> None:
    host_value = IP_FORWARD.read_text()
    proc = python_in_namespace(("-n",), SNIPPET.replace("sys.argv[1]", repr(str(tmp_path))))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)

    before, flip = out["before"], out["flip"]
    first = out["set"]
    assert first["failed"] is None
    assert first["ip_forward"] == flip and first["port_range"] == ["20000", "30000"]
    assert first["changes"][0] == ["net.ipv4.ip_forward", "set", before, flip]
    # S4/K2: delete is not supported for kernel.sysctl: reported as skipped, nothing written.
    assert first["changes"][2][:2] == ["net.ipv4.tcp_tw_recycle", "skipped"]
    assert "delete is not supported" in proc.stderr

    assert out["again"]["changes"] == [["net.ipv4.ip_forward", "unchanged", flip, flip]]

    # A key the kernel does not have: a clear error naming it; the one before stays (C5),
    # the one after is not tried.
    missing = out["missing"]
    assert missing["failed"][:2] == ["kernel.sysctl", "net.ipv4.no_such_parameter"]
    assert "no such kernel parameter 'net.ipv4.no_such_parameter'" in missing["failed"][2]
    assert missing["changes"] == [["net.ipv4.ip_forward", "set", flip, before]]
    assert missing["ip_forward"] == before

    refused = out["refused"]
    assert refused["failed"][1] == "net.ipv4.ip_forward"
    assert "the kernel refused value 'yes'" in refused["failed"][2]
    assert refused["ip_forward"] == before

    assert IP_FORWARD.read_text() == host_value, "the machine's own value must not change"


@pytest.mark.parametrize(
    "key",
    ["net..ipv4", "net.ipv4.", ".net", "net/ipv4/ip_forward", "..", "a.../etc", "a b", ""],
)
def test_k2_keys_that_could_leave_proc_sys_are_refused(tmp_path: Path, plugins, key) -> None:
    proc_sys = tmp_path / "proc-sys"
    (proc_sys / "net" / "ipv4").mkdir(parents=True)
    outside = tmp_path / "etc"
    outside.mkdir()
    node = NodeContext(host_root=tmp_path, proc_sys=proc_sys)
    config = SettingsConfig("kernel.sysctl", (SettingItem(key, "1"),))
    problems = plugins.model_validators()["kernel.sysctl"](config)
    assert [(p.field, p.rule) for p in problems] == [("contents[0].key", "K2")]
    caller = plugins.owner_hook("kubeos_apply_setting", plugins.model_owner("kernel.sysctl"))
    with pytest.raises(SettingError) as err:
        caller(model="kernel.sysctl", config=config, node=node)
    assert err.value.key == key and err.value.applied == []
    assert list(outside.iterdir()) == []


def test_k2_group_and_empty_value(tmp_path: Path, plugins) -> None:
    proc_sys = tmp_path / "proc-sys"
    (proc_sys / "net" / "ipv4").mkdir(parents=True)
    node = NodeContext(host_root=tmp_path, proc_sys=proc_sys)
    caller = plugins.owner_hook("kubeos_apply_setting", plugins.model_owner("kernel.sysctl"))
    with pytest.raises(SettingError, match="is a group of kernel parameters"):
        caller(
            model="kernel.sysctl",
            config=SettingsConfig("kernel.sysctl", (SettingItem("net.ipv4", "1"),)),
            node=node,
        )
    empty = SettingsConfig("kernel.sysctl", (SettingItem("net.ipv4.ip_forward", ""),))
    problems = plugins.model_validators()["kernel.sysctl"](empty)
    assert [(p.field, p.rule) for p in problems] == [("contents[0].value", "S3")]
    # a delete needs no value: it is ignored anyway (S4)
    delete = SettingsConfig("kernel.sysctl", (SettingItem("a.b", None, "delete"),))
    assert plugins.model_validators()["kernel.sysctl"](delete) == []
