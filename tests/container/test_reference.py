"""`containerimage` forms and the checks made before any command runs (U2, D4)."""

from __future__ import annotations

import os
from pathlib import Path

import kubeos_image_containerd
import kubeos_image_docker
import pytest

from kubeos.contracts import NodeContext, Partition
from kubeos.errors import ImageError
from kubeos.models.os import OSSpec
from kubeos.rootfs.reference import (
    expected_digest,
    image_ref,
    qualified,
    refuse_pinned_mismatch,
    same_repository,
)
from tests.container.helpers import recorded, recorder

HEX = "0123456789abcdef" * 4


def spec(containerimage: str, checksum: str = HEX, imagetype: str = "containerd") -> OSSpec:
    return OSSpec(
        opstype="upgrade",
        osversion="KubeOS 1.0.1",
        maxunavailable=1,
        imagetype=imagetype,
        containerimage=containerimage,
        checksum=checksum,
    )


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("registry.example.internal/kubeos/os", "registry.example.internal/kubeos/os:latest"),
        ("registry.example.internal/kubeos/os:1.0.1", "registry.example.internal/kubeos/os:1.0.1"),
        (f"127.0.0.1:5000/kubeos/os@sha256:{HEX}", f"127.0.0.1:5000/kubeos/os@sha256:{HEX}"),
        ("kubeos/os:1.0.1", "docker.io/kubeos/os:1.0.1"),
        ("localhost/os", "localhost/os:latest"),
    ],
)
def test_accepted_forms_u2(text: str, full: str) -> None:
    assert qualified(image_ref(spec(text))) == full


@pytest.mark.parametrize(
    "text",
    [
        "",
        "os",  # no repository
        "kubeos/os:",
        "kubeos/OS:1.0",
        f"kubeos/os:1.0@sha256:{HEX}",  # tag and digest together
        "kubeos/os@sha256:1234",
        f"kubeos/os@sha512:{HEX}{HEX}",
        "https://registry.example.internal/kubeos/os",
        "kubeos/os:1.0; rm -rf /",
        "-kubeos/os",
        " kubeos/os",
        "kubeos/os:1.0\n",
        "kubeos/../os",
    ],
)
def test_anything_else_is_refused_u2(text: str) -> None:
    with pytest.raises(ImageError, match=r"spec\.containerimage: .* \[U2\]"):
        image_ref(spec(text))


def test_checksum_forms_d4() -> None:
    assert expected_digest(spec("a/b", HEX.upper())) == f"sha256:{HEX}"
    assert expected_digest(spec("a/b", f"sha256:{HEX}")) == f"sha256:{HEX}"
    with pytest.raises(ImageError, match=r"spec\.checksum.*\[D4\]"):
        expected_digest(spec("a/b", ""))


def test_a_pinned_digest_must_equal_checksum_d4() -> None:
    ref = image_ref(spec(f"reg.io/a/b@sha256:{HEX}"))
    refuse_pinned_mismatch(ref, f"sha256:{HEX}")
    with pytest.raises(ImageError, match="pinned"):
        refuse_pinned_mismatch(ref, "sha256:" + "f" * 64)
    refuse_pinned_mismatch(image_ref(spec("reg.io/a/b:1")), "sha256:" + "f" * 64)


def test_repository_names_compare_qualified() -> None:
    assert same_repository("kubeos/os", "docker.io/kubeos/os")
    assert same_repository("busybox", "docker.io/library/busybox")
    assert same_repository("127.0.0.1:5000/kubeos/os", "127.0.0.1:5000/kubeos/os")
    assert not same_repository("127.0.0.1:5000/kubeos/os", "kubeos/os")


@pytest.mark.parametrize("plugin", [kubeos_image_containerd, kubeos_image_docker])
@pytest.mark.parametrize(
    ("image", "checksum", "why"),
    [
        ("not an image", HEX, r"\[U2\]"),
        (f"reg.io/a/b@sha256:{HEX}", "f" * 64, r"pinned"),
        ("reg.io/a/b:1", "", r"\[D4\]"),
    ],
)
def test_refused_before_any_command_runs(
    plugin: object,
    image: str,
    checksum: str,
    why: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bad input: a clear error, and not one runtime command was started."""
    shims, log = tmp_path / "bin", tmp_path / "calls.log"
    shims.mkdir()
    for tool in ("ctr", "crictl", "docker"):
        recorder(shims / tool, log, "exit 1")
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    node = NodeContext(host_root=tmp_path / "host", work_dir=tmp_path / "scratch")
    target = Partition("B", 3, tmp_path / "disk.img", 0, 64 << 20)
    with pytest.raises(ImageError, match=why):
        plugin.kubeos_fetch_image(spec=spec(image, checksum), node=node, target=target)  # type: ignore[attr-defined]
    assert recorded(log) == []
