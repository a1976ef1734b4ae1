"""Talking to containerd: `crictl` to pull when the node has it, `ctr` for everything else.

Why both: on a Kubernetes node the kubelet sees images through CRI, so pulling with
`crictl` uses the registry mirrors and credentials the CRI plugin is configured with (the
spec's preferred path). `crictl` cannot export an image, so the content is read back with
`ctr` from the same namespace (`k8s.io`). Without crictl, `ctr images pull` is told where
the registry host configuration lives (`--hosts-dir /etc/containerd/certs.d`, G9).

NodeContext.extras (all optional):
  containerd.address     socket (default: /run/containerd/containerd.sock under the host root)
  containerd.snapshotter snapshotter for `ctr images pull` (default: containerd's own)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kubeos import runner
from kubeos.contracts import NodeContext
from kubeos.errors import ImageError
from kubeos.runner import CommandError

log = logging.getLogger(__name__)

NAMESPACE = "k8s.io"
SOCKET = "/run/containerd/containerd.sock"
HOSTS_DIR = "/etc/containerd/certs.d"
PULL_TIMEOUT = 1800.0
EXPORT_TIMEOUT = 1800.0
QUERY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Containerd:
    address: Path
    hosts_dir: Path
    snapshotter: str = ""
    crictl: str | None = None

    @classmethod
    def for_node(cls, node: NodeContext) -> Containerd:
        address = node.extras.get("containerd.address") or str(node.host_path(SOCKET))
        return cls(
            address=Path(address.removeprefix("unix://")),
            hosts_dir=node.host_path(HOSTS_DIR),
            snapshotter=node.extras.get("containerd.snapshotter", ""),
            crictl=runner.which("crictl"),
        )

    # -- commands --------------------------------------------------------------------
    def _ctr(self, *args: str | Path, timeout: float = QUERY_TIMEOUT) -> str:
        argv = ["ctr", "--address", self.address, "--namespace", NAMESPACE, *args]
        return runner.run(argv, timeout=timeout).stdout.decode(errors="replace")

    def _crictl(self, *args: str, timeout: float = QUERY_TIMEOUT) -> str:
        assert self.crictl is not None
        endpoint = f"unix://{self.address}"
        argv = [self.crictl, "--runtime-endpoint", endpoint, "--image-endpoint", endpoint, *args]
        return runner.run(argv, timeout=timeout).stdout.decode(errors="replace")

    def pull(self, ref: str) -> None:
        """Pull `ref` (fully qualified) into the k8s.io namespace."""
        try:
            if self.crictl:
                log.info("pulling %s with crictl", ref)
                self._crictl("pull", ref, timeout=PULL_TIMEOUT)
                return
            log.info("pulling %s with ctr (crictl not found on PATH)", ref)
            args: list[str | Path] = ["images", "pull", "--hosts-dir", self.hosts_dir]
            if self.snapshotter:
                args += ["--snapshotter", self.snapshotter]
            self._ctr(*args, ref, timeout=PULL_TIMEOUT)
        except CommandError as exc:
            raise ImageError(f"spec.containerimage: pulling {ref} failed: {exc}") from exc

    def digest(self, ref: str) -> str | None:
        """The digest containerd recorded for `ref` (the registry's); None: no such image."""
        try:
            out = self._ctr("images", "ls", f"name=={ref}")
        except CommandError as exc:
            raise ImageError(f"containerd at {self.address} cannot list images: {exc}") from exc
        for line in out.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[0] == ref:
                return fields[2]
        return None

    def export(self, ref: str, archive: Path) -> None:
        """Write `ref` as an OCI image-layout tar (this node's platform only)."""
        try:
            self._ctr("images", "export", archive, ref, timeout=EXPORT_TIMEOUT)
        except CommandError as exc:
            raise ImageError(f"exporting {ref} from containerd failed: {exc}") from exc

    def remove(self, ref: str) -> None:
        """Forget the image again if it is there (a failed pull may leave it); never fatal."""
        try:
            if self.digest(ref) is None:
                return
            if self.crictl:
                self._crictl("rmi", ref)
            else:
                self._ctr("images", "rm", ref)
            log.info("removed pulled image %s", ref)
        except (CommandError, ImageError) as exc:
            log.warning("could not remove pulled image %s: %s", ref, exc)
