"""Talking to the docker engine through the `docker` CLI.

Why the CLI rather than the engine API with `requests`: the CLI brings the engine's own
registry authentication (config.json, credential helpers) and API-version negotiation,
which an API client would have to re-implement; `requests` has no unix-socket transport
without another dependency; and every call goes through `kubeos.runner.run` with a
timeout and the engine's stderr in the error, like every other external command. What the
agent does is also exactly what an admin can re-run by hand.

NodeContext.extras (optional):
  docker.host  engine address for `docker -H` (default: $DOCKER_HOST, else
               unix:///var/run/docker.sock under the host root)
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubeos import runner
from kubeos.contracts import NodeContext
from kubeos.errors import ImageError
from kubeos.rootfs.reference import same_repository
from kubeos.runner import CommandError

log = logging.getLogger(__name__)

SOCKET = "/var/run/docker.sock"
PULL_TIMEOUT = 1800.0
EXPORT_TIMEOUT = 1800.0
QUERY_TIMEOUT = 60.0
_PULLED_DIGEST = re.compile(r"^Digest: (sha256:[0-9a-f]{64})\s*$", re.MULTILINE)


@dataclass(frozen=True)
class DockerEngine:
    host: str

    @classmethod
    def for_node(cls, node: NodeContext) -> DockerEngine:
        host = node.extras.get("docker.host") or os.environ.get("DOCKER_HOST")
        return cls(host or f"unix://{node.host_path(SOCKET)}")

    def _docker(
        self, *args: str | Path, timeout: float = QUERY_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return runner.run(["docker", "-H", self.host, *args], timeout=timeout, check=check)

    def has_image(self, ref: str) -> bool:
        try:
            proc = self._docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        except CommandError as exc:
            raise ImageError(f"docker engine at {self.host} is not usable: {exc}") from exc
        return proc.returncode == 0

    def pull(self, ref: str, repository: str) -> str:
        """Pull `ref` (of `repository`); return the registry digest the engine resolved."""
        log.info("pulling %s through the docker engine at %s", ref, self.host)
        try:
            out = self._docker("pull", ref, timeout=PULL_TIMEOUT).stdout.decode(errors="replace")
        except CommandError as exc:
            raise ImageError(f"spec.containerimage: pulling {ref} failed: {exc}") from exc
        match = _PULLED_DIGEST.search(out)
        if match:
            return match.group(1)
        log.info("the pull output of %s names no digest: reading its RepoDigests", ref)
        return self._repo_digest(ref, repository)

    def _repo_digest(self, ref: str, repo: str) -> str:
        """The digest recorded for `ref`'s repository, when the pull output did not say."""
        try:
            out = self._docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
            entries = json.loads(out.stdout or b"[]") or []
        except (CommandError, ValueError) as exc:
            raise ImageError(f"cannot read the registry digest of {ref}: {exc}") from exc
        digests = {
            str(entry).split("@", 1)[1]
            for entry in entries
            if "@" in str(entry) and same_repository(str(entry).split("@", 1)[0], repo)
        }
        if len(digests) != 1:
            raise ImageError(
                f"cannot tell which registry digest {ref} has (found {sorted(digests) or 'none'})"
            )
        return digests.pop()

    def export_rootfs(self, image: str, archive: Path) -> None:
        """`docker create` a container that never runs, export its filesystem, remove it."""
        name = f"kubeos-rootfs-{secrets.token_hex(6)}"
        try:
            # `image` is name@digest, so even if the engine fetched it again it would get
            # exactly the verified content (no `--pull never`: docker 18.09 lacks the flag).
            # No command is run: the argument only satisfies images without CMD/ENTRYPOINT.
            self._docker("create", "--network", "none", "--name", name, image, "kubeos-rootfs")
            self._docker("export", "--output", archive, name, timeout=EXPORT_TIMEOUT)
        except CommandError as exc:
            raise ImageError(f"exporting the file system of {image} failed: {exc}") from exc
        finally:
            # --volumes: anonymous VOLUMEs the image declares would outlive the container
            self._docker("rm", "--force", "--volumes", name, check=False)

    def remove_image(self, ref: str) -> None:
        """Forget the pulled image again; failing to is logged, not fatal."""
        try:
            if self.has_image(ref):
                self._docker("rmi", ref)
                log.info("removed pulled image %s", ref)
        except (CommandError, ImageError) as exc:
            log.warning("could not remove pulled image %s: %s", ref, exc)
