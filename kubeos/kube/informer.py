"""A small reusable informer: list, then watch from the list's resourceVersion.

The cache is the operator's view of the cluster, so decisions never list the API.
A 410 Gone (the watch fell too far behind) re-lists; any other failure reconnects
with exponential backoff, resuming from the last resourceVersion seen.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)

#: A bound list call, e.g. functools.partial(CoreV1Api(api).list_node) or
#: functools.partial(CustomObjectsApi(api).list_namespaced_custom_object, g, v, ns, plural).
ListCall = Callable[..., Any]


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta.get('name') or ''}" if ns else str(meta.get("name") or "")


def _rv_int(obj: Mapping[str, Any] | None) -> int | None:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion"))
    except (TypeError, ValueError):
        return None


class Gone(Exception):
    """The watch's resourceVersion is too old (410): the cache must be rebuilt."""


class Informer:
    """Keeps an up-to-date dict of one resource; calls `on_change` after every change."""

    def __init__(
        self,
        name: str,
        list_call: ListCall,
        *,
        on_change: Callable[[], None] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        watch_timeout: int = 300,
        min_backoff: float = 0.2,
        max_backoff: float = 30.0,
    ) -> None:
        self.name = name
        self._list_call = list_call
        self._on_change = on_change or (lambda: None)
        self._transform = transform or (lambda obj: obj)
        self._watch_timeout = watch_timeout
        self._min_backoff, self._max_backoff = min_backoff, max_backoff
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        self._synced = threading.Event()
        self._watch: watch.Watch | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.resource_version: str | None = None
        self.relists = 0  # how many times the cache was rebuilt (observability, tests)

    # -- reading the cache -------------------------------------------------------------
    def items(self) -> list[dict[str, Any]]:
        """A deep copy of every cached object (callers may keep or change it)."""
        with self._lock:
            return copy.deepcopy(list(self._items.values()))

    def snapshot(self) -> list[dict[str, Any]]:
        """Every cached object without copying: READ-ONLY for the caller.

        Safe because the cache replaces objects and never changes one in place.
        """
        with self._lock:
            return list(self._items.values())

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._items.get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def upsert(self, obj: Mapping[str, Any]) -> None:
        """Record an object this process just wrote, before its watch event arrives.

        An older version (by numeric resourceVersion) never replaces a newer one, so a
        late watch event cannot roll the cache back.
        """
        self._apply("MODIFIED", dict(obj))

    def discard(self, key: str) -> None:
        """Forget an object this process found deleted (e.g. a 404 on re-read)."""
        with self._lock:
            self._items.pop(key, None)

    # -- running -----------------------------------------------------------------------
    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        w = self._watch
        if w is not None:
            w.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run(self) -> None:
        backoff = self._min_backoff
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                started = time.monotonic()
                self._watch_once()
                if time.monotonic() - started < min(1.0, self._watch_timeout / 2):
                    # Ended at once without an error (a proxy cutting streams, a server
                    # shutting down): wait, or every informer becomes a request storm.
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                else:
                    backoff = self._min_backoff
            except Gone:
                log.info("%s: watch expired (410 Gone), re-listing", self.name)
                need_list = True
            except ApiException as exc:
                if exc.status == 410:
                    need_list = True
                    continue
                log.warning("%s: API error %s %s; retry in %.1fs", self.name, exc.status,
                            exc.reason, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            except (HTTPError, OSError, ValueError) as exc:
                if self._stop.is_set():
                    break
                log.warning("%s: connection lost (%s); retry in %.1fs", self.name, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            except Exception:  # anything unexpected: never leave a silently stale cache
                if self._stop.is_set():
                    break
                log.exception("%s: watch failed; re-listing in %.1fs", self.name, backoff)
                need_list = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def _relist(self) -> None:
        resp = self._list_call(_preload_content=False, _request_timeout=30)
        body = json.loads(resp.data)
        items = {}
        for obj in body.get("items") or []:
            if isinstance(obj, dict):
                items[object_key(obj)] = self._transform(obj)
        with self._lock:
            self._items = items
            self.resource_version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        self.relists += 1
        self._synced.set()
        log.debug("%s: listed %d object(s) at resourceVersion %s", self.name, len(items),
                  self.resource_version)
        self._on_change()

    def _watch_once(self) -> None:
        w = watch.Watch(return_type="object")  # raw dicts, as the list gives
        self._watch = w
        if self._stop.is_set():
            return
        try:
            for event in w.stream(
                self._list_call,
                resource_version=self.resource_version or None,
                timeout_seconds=self._watch_timeout,
                allow_watch_bookmarks=True,
                _request_timeout=self._watch_timeout + 30,
            ):
                etype = event.get("type")
                obj = event.get("raw_object")
                if etype == "ERROR":
                    code = obj.get("code") if isinstance(obj, dict) else None
                    if code == 410:
                        raise Gone()
                    raise ApiException(status=code or 500, reason=str(obj))
                if not isinstance(obj, dict):
                    continue
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if etype == "BOOKMARK":
                    if rv:
                        self.resource_version = str(rv)
                    continue
                if etype in ("ADDED", "MODIFIED", "DELETED"):
                    self._apply(etype, obj)
                    if rv:
                        self.resource_version = str(rv)
                    self._on_change()
                if self._stop.is_set():
                    break
        finally:
            self._watch = None

    def _apply(self, etype: str, obj: dict[str, Any]) -> None:
        obj = self._transform(obj)
        key = object_key(obj)
        with self._lock:
            current = self._items.get(key)
            new_rv, cur_rv = _rv_int(obj), _rv_int(current)
            if etype == "DELETED":
                self._items.pop(key, None)
                return
            if new_rv is not None and cur_rv is not None and new_rv < cur_rv:
                return
            self._items[key] = obj
