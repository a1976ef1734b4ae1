"""The agent's loop: it notices a dispatch through its watch and finishes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kubeos.agent.loop import Agent, agent_api_client
from tests.agent.conftest import OLD, AgentEnv


@contextmanager
def running_agent(env: AgentEnv) -> Iterator[threading.Thread]:
    """The agent loop in a thread, registered (its OSInstance has a status); stopped after."""
    stop = threading.Event()
    agent = Agent(
        agent_api_client(server=env.api.url),
        env.host,
        env.settings(),
        stop=stop,
        resync=60.0,
        watch_window=1.0,
    )
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        env.api.wait_for("osinstances", lambda items: any(o.get("status") for o in items))
        yield thread
    finally:
        stop.set()
        thread.join(timeout=10)


def test_running_agent_picks_up_a_config_dispatch_through_its_watch(env: AgentEnv) -> None:
    with running_agent(env) as thread:
        env.dispatch(
            {
                "imagetype": "",
                "opstype": "config",
                "osversion": OLD,
                "maxunavailable": 1,
                "sysconfigs": {
                    "version": "7",
                    "configs": [
                        {
                            "model": "kernel.sysctl",
                            "contents": [{"key": "net.ipv4.ip_forward", "value": "1"}],
                        }
                    ],
                },
            }
        )
        env.api.wait_for(
            "osinstances",
            lambda items: (
                items[0]["spec"]["nodestatus"] == "idle"
                and items[0]["status"].get("phase") == "done"
            ),
            timeout=10,
        )
    assert not thread.is_alive()
    assert env.status()["sysconfigs"]["version"] == "7"
    assert (env.node.proc_sys / "net/ipv4/ip_forward").read_text().strip() == "1"
    watches = [r for r in env.api.audit if r.verb == "watch" and r.resource == "osinstances"]
    assert watches and all(r.user_agent.startswith("kubeos-agent/") for r in watches)


def test_watches_that_end_at_once_do_not_become_a_request_storm(env: AgentEnv) -> None:
    """A proxy cutting every watch at once: the idle agent backs off between watches."""
    with running_agent(env):
        env.api.watch_timeout = 0  # every watch now ends as soon as it starts
        env.api.clear_audit()
        time.sleep(2.0)
    watches = [r for r in env.api.audit if r.verb == "watch" and r.resource == "osinstances"]
    assert 1 <= len(watches) <= 15
