"""Real containerd, docker-registry and dockerd for the tests, each living in a temp dir.

Every daemon listens on a unix socket under its directory or on 127.0.0.1, and is stopped
by its PID (SIGTERM, then SIGKILL) by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.container.ociimage import OCIImage

STAGE_NAMESPACE = "kubeos-test-stage"


class DaemonFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")[-1500:]
    return ""


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls, name: str, argv: list[str], workdir: Path, ready: Callable[[], bool], wait: float
    ) -> Daemon:
        log = workdir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
        daemon = cls(name, proc, log)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DaemonFailed(f"{name} exited with {proc.returncode}: {_log_tail(log)}")
            if ready():
                return daemon
            time.sleep(0.1)
        daemon.stop()
        raise DaemonFailed(f"{name} not ready after {wait:g}s: {_log_tail(log)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _ok(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0


@dataclass
class Containerd:
    daemon: Daemon
    address: Path

    def ctr(self, *args: str, namespace: str = "k8s.io") -> str:
        proc = subprocess.run(
            ["ctr", "--address", str(self.address), "--namespace", namespace, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise DaemonFailed(f"ctr {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def image_names(self) -> list[str]:
        return self.ctr("images", "ls", "-q").split()


def start_containerd(workdir: Path) -> Containerd:
    workdir.mkdir(parents=True, exist_ok=True)
    address = workdir / "containerd.sock"
    config = workdir / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{workdir / "root"}"\n'
        f'state = "{workdir / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{address}"\n'
        f'[ttrpc]\n  address = "{workdir / "containerd.ttrpc.sock"}"\n'
        '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
    )
    daemon = Daemon.start(
        "containerd",
        ["containerd", "--config", str(config)],
        workdir,
        lambda: address.exists() and _ok(["ctr", "--address", str(address), "version"]),
        wait=20,
    )
    return Containerd(daemon, address)


@dataclass
class Registry:
    daemon: Daemon
    host: str  # 127.0.0.1:PORT


def start_registry(workdir: Path) -> Registry:
    workdir.mkdir(parents=True, exist_ok=True)
    host = f"127.0.0.1:{free_port()}"
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"http:\n  addr: {host}\n"
    )

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    daemon = Daemon.start("registry", ["docker-registry", "serve", str(config)], workdir, ready, 20)
    return Registry(daemon, host)


@dataclass
class Dockerd:
    daemon: Daemon
    host: str  # unix://...

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, text=True, timeout=120
        )
        if check and proc.returncode != 0:
            raise DaemonFailed(f"docker {' '.join(args)}: {proc.stderr.strip()}")
        return proc


def start_dockerd(workdir: Path, containerd: Containerd) -> Dockerd:
    workdir.mkdir(parents=True, exist_ok=True)
    host = f"unix://{workdir / 'docker.sock'}"
    argv = [
        "dockerd",
        "--data-root", str(workdir / "data"),
        "--exec-root", str(workdir / "exec"),
        "--pidfile", str(workdir / "dockerd.pid"),
        "--host", host,
        "--containerd", str(containerd.address),
        "--storage-driver", "vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--ip-masq=false",
        "--ip-forward=false",  # never touch the machine's own net.ipv4.ip_forward
    ]  # fmt: skip
    daemon = Daemon.start(
        "dockerd", argv, workdir, lambda: _ok(["docker", "-H", host, "version"]), wait=40
    )
    return Dockerd(daemon, host)


def publish(containerd: Containerd, registry: Registry, image: OCIImage, repo_tag: str) -> str:
    """Push `image` to the registry as `repo_tag` (e.g. kubeos/os:1.0.1); return its full ref.

    The image goes through a staging namespace of the same containerd, which is emptied
    again, so the namespace under test starts without it.
    """
    ref = f"{registry.host}/{repo_tag}"
    layout = image.layout_tar(Path(containerd.daemon.log.parent) / "stage.tar", ref)
    try:
        containerd.ctr(
            "images", "import", "--snapshotter", "native", "--no-unpack", str(layout),
            namespace=STAGE_NAMESPACE,
        )  # fmt: skip
        containerd.ctr("images", "push", "--plain-http", ref, namespace=STAGE_NAMESPACE)
        containerd.ctr("images", "rm", ref, namespace=STAGE_NAMESPACE)
    finally:
        layout.unlink()
    return ref


def missing(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]
