"""kubernetes.kubelet, container.containerd and pam.limits on real files (issue 8)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import tomlkit
import yaml

from kubeos.configapply import apply_sysconfigs
from kubeos.errors import ValidationFailed
from kubeos.models.os import parse_os
from kubeos.models.settings import parse_sysconfigs

KUBELET = textwrap.dedent("""\
    # managed by the image; kubeos edits in place
    apiVersion: kubelet.config.k8s.io/v1beta1
    kind: KubeletConfiguration
    evictionHard:
      memory.available: 100Mi   # keep this comment
    clusterDNS:
    - 10.96.0.10
    maxPods: 110
""")
CONTAINERD = textwrap.dedent("""\
    version = 2
    # CRI plugin
    [plugins."io.containerd.grpc.v1.cri"]
      sandbox_image = "registry.k8s.io/pause:3.6"  # pause image
      max_concurrent_downloads = 3
""")
LIMITS = textwrap.dedent("""\
    # /etc/security/limits.conf
    #<domain>      <type>  <item>         <value>
    *               soft    core            0
    @wheel          hard    nproc           4096   # admins
""")


def apply(host, node, configs: list[dict[str, Any]]):
    sysconfigs, problems = parse_sysconfigs(
        {"version": "1", "configs": configs}, "sysconfigs", host.model_validators()
    )
    assert problems == []
    return apply_sysconfigs(host, sysconfigs, node)


def put(node, path: str, text: str, mode: int = 0o640) -> Path:
    f = node.host_path(path)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    f.chmod(mode)
    return f


def test_kubelet_add_nested_create_list_append_update_delete(addon_host, node) -> None:
    f = put(node, "/var/lib/kubelet/config.yaml", KUBELET)
    report = apply(addon_host, node, [{"model": "kubernetes.kubelet", "contents": [
        {"key": "maxPods", "value": "64"},
        {"key": 'evictionHard."nodefs.available"', "value": "10%"},
        {"key": "kubeReserved.cpu", "value": "500m"},
        {"key": "clusterDNS", "value": "[10.96.0.10, 10.96.0.11]"},
        {"key": 'evictionHard."memory.available"', "operation": "delete"},
        {"key": "featureGates", "value": "{RotateKubeletServerCertificate: true}"},
    ]}])  # fmt: skip
    assert report.ok, report.failed
    text = f.read_text()
    doc = yaml.safe_load(text)
    assert doc["maxPods"] == 64
    assert doc["evictionHard"] == {"nodefs.available": "10%"}
    assert doc["kubeReserved"] == {"cpu": "500m"}
    assert doc["clusterDNS"] == ["10.96.0.10", "10.96.0.11"]  # appended, not duplicated
    assert doc["featureGates"] == {"RotateKubeletServerCertificate": True}
    assert text.startswith("# managed by the image; kubeos edits in place\n")
    assert os.stat(f).st_mode & 0o777 == 0o640
    assert [c.action for c in report.changes] == [
        "updated", "added", "added", "updated", "deleted", "added"
    ]  # fmt: skip


def test_kubelet_delete_absent_warns_and_s5_mismatch_keeps(addon_host, node) -> None:
    f = put(node, "/var/lib/kubelet/config.yaml", KUBELET)
    report = apply(addon_host, node, [{"model": "kubernetes.kubelet", "contents": [
        {"key": "nope.nothing", "operation": "delete"},
        {"key": "maxPods", "value": "50", "operation": "delete"},
    ]}])  # fmt: skip
    assert report.ok
    assert [c.note for c in report.changes] == [
        "absent; nothing to delete",
        "value differs; not deleted (S5)",
    ]
    assert f.read_text() == KUBELET  # nothing rewritten


def test_kubelet_malformed_file_left_untouched(addon_host, node) -> None:
    bad = "kind: [unclosed\n"
    f = put(node, "/var/lib/kubelet/config.yaml", bad)
    report = apply(addon_host, node, [{"model": "kubernetes.kubelet", "contents": [
        {"key": "maxPods", "value": "10"}]}])  # fmt: skip
    assert not report.ok and "not valid YAML, left untouched" in str(report.failed)
    assert f.read_text() == bad


def test_kubelet_path_through_a_scalar_is_refused_without_writing(addon_host, node) -> None:
    f = put(node, "/var/lib/kubelet/config.yaml", KUBELET)
    report = apply(addon_host, node, [{"model": "kubernetes.kubelet", "contents": [
        {"key": "kubeReserved.cpu", "value": "1"},
        {"key": "maxPods.limit", "value": "1"}]}])  # fmt: skip
    assert report.failed is not None
    assert report.failed.key == "maxPods.limit" and "not a mapping" in str(report.failed)
    assert f.read_text() == KUBELET  # the block is all-or-nothing on the file


def test_containerd_quoted_keys_types_and_layout(addon_host, node) -> None:
    f = put(node, "/etc/containerd/config.toml", CONTAINERD, 0o600)
    ino = f.stat().st_ino
    report = apply(addon_host, node, [{"model": "container.containerd", "contents": [
        {"key": 'plugins."io.containerd.grpc.v1.cri".sandbox_image',
         "value": "reg.local/pause:3.9"},
        {"key": 'plugins."io.containerd.grpc.v1.cri".max_concurrent_downloads', "value": "10"},
        {"key": 'plugins."io.containerd.grpc.v1.cri".registry.config_path',
         "value": "/etc/containerd/certs.d"},
        {"key": "oom_score", "value": "-999"},
        {"key": "required_plugins", "value": '["io.containerd.grpc.v1.cri"]'},
    ]}])  # fmt: skip
    assert report.ok, report.failed
    text = f.read_text()
    doc = tomlkit.parse(text).unwrap()
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "reg.local/pause:3.9"
    assert cri["max_concurrent_downloads"] == 10
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert doc["oom_score"] == -999 and doc["required_plugins"] == ["io.containerd.grpc.v1.cri"]
    assert "# CRI plugin" in text and "# pause image" in text
    assert f.stat().st_mode & 0o777 == 0o600 and f.stat().st_ino != ino  # atomic replace

    report = apply(addon_host, node, [{"model": "container.containerd", "contents": [
        {"key": "required_plugins", "value": '["io.containerd.grpc.v1.cri", "x"]'},
        {"key": "oom_score", "operation": "delete"},
    ]}])  # fmt: skip
    doc = tomlkit.parse(f.read_text()).unwrap()
    assert doc["required_plugins"] == ["io.containerd.grpc.v1.cri", "x"]
    assert "oom_score" not in doc


def test_containerd_malformed_file_untouched(addon_host, node) -> None:
    bad = "[plugins\nversion = 2\n"
    f = put(node, "/etc/containerd/config.toml", bad)
    report = apply(addon_host, node, [{"model": "container.containerd", "contents": [
        {"key": "version", "value": "3"}]}])  # fmt: skip
    assert not report.ok and "not valid TOML" in str(report.failed)
    assert f.read_text() == bad


def test_pam_limits_add_update_delete_s5(addon_host, node) -> None:
    f = put(node, "/etc/security/limits.conf", LIMITS, 0o644)
    report = apply(addon_host, node, [{"model": "pam.limits", "contents": [
        {"key": "*.soft.nofile", "value": "65536"},
        {"key": "@wheel.hard.nproc", "value": "8192"},
        {"key": "*.soft.core", "value": "1", "operation": "delete"},
        {"key": "john.doe.-.memlock", "value": "unlimited"},
    ]}])  # fmt: skip
    assert report.ok, report.failed
    lines = f.read_text().splitlines()
    assert "@wheel          hard    nproc           8192   # admins" in lines  # spacing kept
    assert "*               soft    core            0" in lines  # S5: value differed
    assert "*\tsoft\tnofile\t65536" in lines and "john.doe\t-\tmemlock\tunlimited" in lines
    assert lines[0] == "# /etc/security/limits.conf"
    report = apply(addon_host, node, [{"model": "pam.limits", "contents": [
        {"key": "*.soft.core", "value": "0", "operation": "delete"}]}])  # fmt: skip
    assert report.changes[0].action == "deleted"
    assert "*               soft    core            0" not in f.read_text()


@pytest.mark.parametrize(
    ("model", "item", "field_rule"),
    [
        ("pam.limits", {"key": "*.soft", "value": "1"}, ("contents[0].key", "PL1")),
        ("pam.limits", {"key": "*.often.nofile", "value": "1"}, ("contents[0].key", "PL1")),
        ("pam.limits", {"key": "*.soft.nofile", "value": "lots"}, ("contents[0].value", "PL2")),
        ("kubernetes.kubelet", {"key": 'a."b', "value": "1"}, ("contents[0].key", "KL1")),
        ("kubernetes.kubelet", {"key": "a..b", "value": "1"}, ("contents[0].key", "KL1")),
        ("kubernetes.kubelet", {"key": "a", "value": "[1,"}, ("contents[0].value", "KL2")),
        ("container.containerd", {"key": "a b", "value": "1"}, ("contents[0].key", "CT1")),
        ("container.containerd", {"key": "a"}, ("contents[0].value", "S3")),
    ],
)
def test_validation_names_the_key(addon_host, model, item, field_rule) -> None:
    doc = {
        "apiVersion": "upgrade.openeuler.org/v1alpha1",
        "kind": "OS",
        "metadata": {"name": "x"},
        "spec": {"imagetype": "", "opstype": "config", "osversion": "v", "maxunavailable": 1,
                 "sysconfigs": {"version": "1", "configs": [{"model": model, "contents": [item]}]}},
    }  # fmt: skip
    with pytest.raises(ValidationFailed) as exc:
        parse_os(doc, addon_host.model_validators())
    field, rule = field_rule
    problem = exc.value.problems[0]
    assert problem.field == f"spec.sysconfigs.configs[0].{field}" and problem.rule == rule


def test_one_sysconfigs_mixes_builtin_and_addon_models(addon_host, node) -> None:
    """Add-ons go through the same config path as the built-in models."""
    kubelet = put(node, "/var/lib/kubelet/config.yaml", KUBELET)
    limits = put(node, "/etc/security/limits.conf", LIMITS)
    sysctl_conf = put(node, "/etc/sysctl.conf", "# kernel\nvm.swappiness = 60\n")
    report = apply(addon_host, node, [
        {"model": "kernel.sysctl.persist",
         "contents": [{"key": "vm.swappiness", "value": "10"}]},
        {"model": "pam.limits", "contents": [{"key": "*.hard.nofile", "value": "1024"}]},
        {"model": "kubernetes.kubelet", "contents": [{"key": "maxPods", "value": "20"}]},
        {"model": "container.containerd", "configpath": "/etc/missing/config.toml",
         "contents": [{"key": "version", "value": "2"}]},
        {"model": "kubernetes.kubelet", "contents": [{"key": "maxPods", "value": "30"}]},
    ])  # fmt: skip
    # S6/C5: stops at the first failure, reports what was applied before it.
    assert report.failed is not None and report.failed.model == "container.containerd"
    assert "does not exist" in str(report.failed)
    assert [(c.model, c.action) for c in report.changes] == [
        ("kernel.sysctl.persist", "updated"),
        ("pam.limits", "added"),
        ("kubernetes.kubelet", "updated"),
    ]
    assert yaml.safe_load(kubelet.read_text())["maxPods"] == 20
    assert "*\thard\tnofile\t1024" in limits.read_text()
    assert sysctl_conf.read_text() == "# kernel\nvm.swappiness = 10\n"
