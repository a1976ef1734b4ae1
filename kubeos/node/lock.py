"""One root-changing operation per node at a time (an agent and a CLI run could race).

An advisory flock on /run/kubeos/node.lock under the host root: released by the kernel
when the process dies, so a crashed run never leaves the node locked, and /run is empty
after a reboot anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from kubeos.contracts import NodeContext
from kubeos.errors import KubeosError

LOCK_PATH = "/run/kubeos/node.lock"


class NodeBusy(KubeosError):
    """Another upgrade or rollback is running on this node."""


@contextlib.contextmanager
def node_lock(node: NodeContext, what: str) -> Iterator[None]:
    path = node.host_path(LOCK_PATH)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise NodeBusy(
                f"cannot start {what}: {holder} is changing this node's roots [G8]"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)
