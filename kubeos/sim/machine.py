"""One simulated machine: its disk, its host root, its kubelet and its agent process.

The agent runs as its own process with its own plugin host, exactly like the DaemonSet's
container (forked from a fork server that has imported the agent once, see
`kubeos.sim.agentproc`): it can be killed at any point (SIGKILL, as a test does) and is
started again like a restarted pod. A reboot requested through the simulated reboot hook
is carried out here: the agent is killed (power cycle), the grubenv's saved entry is
booted (its kernel command line becomes proc/cmdline, the booted root's /etc/os-release
is read with debugfs into the host root, the boot id changes), the kubelet reports the
new osImage, and a fresh agent starts - the agent's real after-reboot path.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import threading
from dataclasses import dataclass, field
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path

from kubeos.contracts import NodeContext
from kubeos.errors import KubeosError
from kubeos.fsutil import atomic_write
from kubeos.node import ext4, grubenv
from kubeos.node.layout import find_layout
from kubeos.node.osrelease import pretty_name
from kubeos.sim import agentproc, disks
from kubeos.sim.kubelet import SimKubelet
from kubeos.sim.rebootplugin import REQUEST_PATH

log = logging.getLogger(__name__)


_context: BaseContext | None = None


def _agent_context() -> BaseContext:
    """A fork server that has imported the agent and plugins once (see agentproc)."""
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["kubeos.sim.agentpreload"])
        _context = ctx
    return _context


def start_fork_server() -> None:
    """Start the agents' fork server now, so its imports overlap with building disks."""
    _agent_context()
    forkserver.ensure_running()


def entry_cmdline(grub_cfg: str, label: str) -> str:
    """The kernel command line grub passes for menu entry `label` (its `linux` line)."""
    block = re.search(
        rf"menuentry\s+'{re.escape(label)}'[^{{]*\{{(?P<body>.*?)\n\}}", grub_cfg, re.S
    )
    if block is None:
        raise KubeosError(f"grub.cfg has no menu entry {label!r}")
    line = re.search(r"^\s*linux\s+(\S+)\s*(.*)$", block["body"], re.M)
    if line is None:
        raise KubeosError(f"grub.cfg entry {label!r} has no linux line")
    return f"BOOT_IMAGE={line[1]} {line[2]}".strip()


def boot_saved_entry(node: NodeContext) -> tuple[str, str]:
    """What firmware, grub and the kernel do: boot saved_entry, else fall back to the other.

    The entry's `linux` line becomes proc/cmdline, the boot id changes, and the booted
    root's /etc/os-release (read with debugfs) becomes the host root's. Returns the root
    label and PRETTY_NAME booted.
    """
    wanted = grubenv.saved_entry(node) or "A"
    grub_cfg = node.grub_cfg.read_text()
    for label in (wanted, "B" if wanted == "A" else "A"):
        disks.write_boot_state(node, entry_cmdline(grub_cfg, label))
        try:
            layout = find_layout(node)
            text = ext4.read_os_release(layout.current_partition)
        except KubeosError as exc:
            log.error("%s: root %s does not boot (%s)", node.node_name, label, exc)
            continue
        atomic_write(node.host_path("/etc/os-release"), text)
        return label, pretty_name(text)
    raise KubeosError(f"{node.node_name}: neither root boots")


@dataclass
class SimMachine:
    name: str
    workdir: Path
    node: NodeContext
    kubelet: SimKubelet
    server_url: str
    namespace: str = "default"
    drain_timeout: float = 30.0
    boots: int = 1
    proc: BaseProcess | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def log_path(self) -> Path:
        """G7: the node's agent log lives on the node."""
        return self.node.host_path("/var/log/kubeos-agent.log")

    @property
    def os_version(self) -> str:
        return pretty_name(self.node.host_path("/etc/os-release").read_text())

    @property
    def booted_root(self) -> str:
        """ "A" or "B": the root named by root= on the kernel command line ("?" if unknown)."""
        try:
            cmdline = self.node.host_path(self.node.cmdline_path).read_text()
        except OSError:
            return "?"
        found = re.search(r"(?:^|\s)root=(\S+)", cmdline)
        by_device = {dev: label for label, dev in disks.DEVICES.items()}
        return by_device.get(found[1], "?") if found else "?"

    # -- the agent process -------------------------------------------------------------
    def start_agent(self) -> None:
        with self._lock:
            if self.proc is not None and self.proc.is_alive():
                return
            argv = [
                "--node",
                self.name,
                "--host-root",
                str(self.node.host_root),
                "--proc-sys",
                str(self.node.proc_sys),
                "--disk",
                str(self.node.disk),
                "--server",
                self.server_url,
                "--namespace",
                self.namespace,
                "--drain-timeout",
                str(self.drain_timeout),
            ]
            self.proc = _agent_context().Process(
                target=agentproc.child_main,
                args=(argv, str(self.log_path)),
                name=f"kubeos-agent-{self.name}",
            )
            self.proc.start()
            log.debug("%s: agent started (pid %s)", self.name, self.proc.pid)

    def kill_agent(self) -> None:
        """SIGKILL the agent, as a power cycle or `kill -9` would."""
        with self._lock:
            if self.proc is not None and self.proc.is_alive():
                self.proc.kill()
            if self.proc is not None:
                self.proc.join()

    @property
    def agent_running(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    # -- reboot ------------------------------------------------------------------------
    @property
    def reboot_requested(self) -> bool:
        return self.node.host_path(REQUEST_PATH).exists()

    def reboot(self) -> str:
        """Power-cycle: kill the agent, boot the saved entry, report, start a fresh agent."""
        self.kill_agent()
        self.kubelet.report(self.os_version, ready=False)
        self.node.host_path(REQUEST_PATH).unlink(missing_ok=True)
        version = self.boot()
        self.kubelet.report(version, ready=True)
        self.start_agent()
        return version

    def boot(self) -> str:
        """Boot the grubenv's saved entry (see `boot_saved_entry`); returns the version."""
        label, version = boot_saved_entry(self.node)
        self.boots += 1
        log.info("%s: booted root %s: %s", self.name, label, version)
        return version
