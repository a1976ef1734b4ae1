"""W4 helper: how long until a time window opens, so the controller sleeps, not polls."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from kubeos.models.timewindow import TimeWindow

_DAY = 24 * 3600.0


def _seconds(t: time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def seconds_until_open(window: TimeWindow | None, local_now: datetime) -> float | None:
    """0 when open now; seconds until it opens; None when it never opens again.

    `local_now` is naive local time, the same clock the admin wrote the window in (W2).
    """
    if window is None or window.is_open(local_now):
        return 0.0
    if isinstance(window.start, time):
        now_s = _seconds(local_now.time())
        start_s = _seconds(window.start)
        wait = start_s - now_s
        return wait if wait > 0 else wait + _DAY
    assert isinstance(window.start, datetime)
    if local_now < window.start:
        return (window.start - local_now) / timedelta(seconds=1)
    return None
