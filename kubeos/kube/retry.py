"""G2: API calls survive conflicts, throttling and server errors without losing state.

A 409 on an optimistic update is not retried blindly: the caller's `attempt` re-reads the
object and re-applies its change, which is what makes the retry correct.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Collection
from typing import TypeVar

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE = {409, 429, 500, 502, 503, 504}


def retry_call(
    attempt: Callable[[], T],
    *,
    what: str,
    tries: int = 8,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    retryable: Collection[int] = RETRYABLE,
) -> T:
    """Call `attempt` until it succeeds; retry 409/429/5xx and connection errors with backoff.

    429 honours Retry-After. Other API errors (404, 422, 403) are raised at once.
    `retryable` narrows the statuses retried (an eviction's 429 is an answer, not a hiccup).
    """
    delay = base_delay
    for n in range(1, tries + 1):
        try:
            return attempt()
        except ApiException as exc:
            if exc.status not in retryable or n == tries:
                raise
            wait = delay
            retry_after = (exc.headers or {}).get("Retry-After") if exc.headers else None
            if exc.status == 429 and retry_after:
                with contextlib.suppress(ValueError):
                    wait = min(float(retry_after), max_delay)
            log.info("%s: API answered %s, retry %d/%d in %.2fs", what, exc.status, n, tries, wait)
        except HTTPError as exc:
            if n == tries:
                raise
            wait = delay
            log.info("%s: connection error %s, retry %d/%d in %.2fs", what, exc, n, tries, wait)
        sleep(wait * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not crypto
        delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
