"""Progress reporting for long steps (download, write, verify) as plain log lines.

Used when no terminal is attached (the agent under systemd/kubelet, CI): one line per
phase at most every `interval` seconds or every 10 %, plus one when a phase completes.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("kubeos.progress")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class LogProgress:
    """A NodeContext.progress callback writing throttled log lines with rate and ETA."""

    def __init__(self, interval: float = 5.0, logger: logging.Logger = log) -> None:
        self.interval = interval
        self.log = logger
        self._phase = ""
        self._start = 0.0
        self._last = 0.0
        self._last_tenth = -1

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if phase != self._phase or done < 0:
            self._phase, self._start, self._last, self._last_tenth = phase, now, 0.0, -1
        tenth = done * 10 // total if total else -1
        finished = total is not None and done >= total
        if not finished and now - self._last < self.interval and tenth == self._last_tenth:
            return
        self._last, self._last_tenth = now, tenth
        elapsed = max(now - self._start, 1e-6)
        rate = done / elapsed
        if total:
            eta = (total - done) / rate if rate > 0 else 0.0
            self.log.info(
                "%s: %s of %s (%d%%), %s/s, ETA %ds",
                phase,
                human_bytes(done),
                human_bytes(total),
                done * 100 // total,
                human_bytes(rate),
                eta,
            )
        else:
            self.log.info("%s: %s, %s/s", phase, human_bytes(done), human_bytes(rate))
