"""W1-W4: the window in which the operator may dispatch nodes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

from kubeos.errors import Problem

_FULL = "%Y-%m-%d %H:%M:%S"
_DAILY = "%H:%M:%S"
# strptime alone accepts "2:0:0" and surrounding white space; W2 asks for exact digits.
_SHAPES = {
    _FULL: re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"),
    _DAILY: re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}"),
}


@dataclass(frozen=True)
class TimeWindow:
    """Either a daily window (`HH:MM:SS`, may wrap midnight) or an absolute one."""

    start: datetime | time
    end: datetime | time

    @property
    def daily(self) -> bool:
        return isinstance(self.start, time)

    def is_open(self, now: datetime) -> bool:
        """W4: may the operator dispatch a new node at `now` (naive local time)?"""
        if isinstance(self.start, time) and isinstance(self.end, time):
            t = now.time().replace(microsecond=0)
            if self.start <= self.end:
                return self.start <= t <= self.end
            return t >= self.start or t <= self.end  # W3: wraps midnight
        assert isinstance(self.start, datetime) and isinstance(self.end, datetime)
        return self.start <= now.replace(microsecond=0) <= self.end


def _parse_one(text: str) -> tuple[str, datetime | time] | None:
    for fmt, kind in ((_FULL, "full"), (_DAILY, "daily")):
        if not _SHAPES[fmt].fullmatch(text):
            continue
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return kind, parsed if kind == "full" else parsed.time()
    return None


def parse_timewindow(
    raw: object, where: str = "spec.timewindow"
) -> tuple[TimeWindow | None, list[Problem]]:
    """Parse and check W1-W3; an absent or all-empty window means no restriction."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [Problem(where, "W1", "must be a mapping with starttime and endtime")]
    start = raw.get("starttime") or ""
    end = raw.get("endtime") or ""
    if not isinstance(start, str) or not isinstance(end, str):
        return None, [Problem(where, "W2", "starttime and endtime must be strings")]
    if not start and not end:
        return None, []
    if not start or not end:
        missing = "starttime" if not start else "endtime"
        return None, [
            Problem(f"{where}.{missing}", "W1", "starttime and endtime must be set together")
        ]
    problems: list[Problem] = []
    parsed: dict[str, tuple[str, datetime | time]] = {}
    for name, text in (("starttime", start), ("endtime", end)):
        one = _parse_one(text)
        if one is None:
            problems.append(
                Problem(
                    f"{where}.{name}", "W2", f"{text!r} is not 'YYYY-MM-DD HH:MM:SS' or 'HH:MM:SS'"
                )
            )
        else:
            parsed[name] = one
    if problems:
        return None, problems
    (k1, s), (k2, e) = parsed["starttime"], parsed["endtime"]
    if k1 != k2:
        return None, [Problem(where, "W2", "starttime and endtime must use the same format")]
    if k1 == "full" and s > e:  # type: ignore[operator]
        return None, [Problem(where, "W2", "starttime must not be after endtime")]
    return TimeWindow(s, e), []
