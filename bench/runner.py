"""One contender's run: reset the stand-in's counters, play the plan and the changes, sample
memory, and collect what happened."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import config
from bench.airtable_admin import AirtableAdmin
from bench.client import Call, Contender, Recorder
from bench.driver import Routing, TwilioConversations, play
from bench.environment import Child, Environment
from bench.memory import MemorySampler
from bench.probes import Probe, Visibility
from bench.workload import Plan

PROGRESS_EVERY = 30.0


@dataclass
class RunResult:
    """What one contender's run produced."""

    name: str
    calls: list[Call]
    visibility: list[Visibility]
    stats: dict[str, Any]
    memory_mib: list[float]
    routing: Routing
    started_unix: float
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def run_contender(
    name: str,
    urls: list[str],
    pids: list[int],
    timeout: float,
    plan: Plan,
    environment: Environment,
    options: config.Options,
    on_start: Callable[[float], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> RunResult:
    """Play `plan` against the instances at `urls`; the stand-in's counters cover only this."""
    admin = AirtableAdmin(environment.airtable_url)
    admin.reset_stats()
    started_unix = time.time()
    recorder = Recorder()
    contender = Contender(name, urls, timeout, recorder)
    sampler = MemorySampler(pids).start()
    if on_start is not None:
        on_start(recorder.started)
    probes = [
        Probe(contender, admin, change, options.probe_timeout, options.poll_every)
        for change in plan.changes
    ]
    for probe in probes:
        probe.start()
    done = threading.Event()
    ticker = threading.Thread(target=_progress, args=(contender, admin, done), daemon=True)
    ticker.start()
    routing = Routing()
    play(contender, plan.actions, TwilioConversations(environment.twilio_url), routing)
    print(
        f"{name}: workload done at {recorder.now():.0f}s; waiting for changes to show", flush=True
    )
    visibility = [probe.join() for probe in probes]
    done.set()
    if on_stop is not None:
        on_stop()
    seconds = recorder.now()
    stats = admin.stats()
    memory = sampler.stop()
    print(f"{name}: finished in {seconds:.0f}s", flush=True)
    return RunResult(
        name, list(recorder.calls), visibility, stats, memory, routing, started_unix, seconds
    )


def _progress(contender: Contender, admin: AirtableAdmin, done: threading.Event) -> None:
    while not done.wait(PROGRESS_EVERY):
        calls = list(contender.recorder.calls)
        slow = sum(1 for c in calls if c.seconds > config.SERVERLESS_LIMIT_SECONDS or not c.status)
        stats = admin.stats()
        print(
            f"{contender.name}: {contender.recorder.now():.0f}s, {len(calls)} callbacks "
            f"({slow} over 10 s), Airtable {stats['total']} requests, {stats['http_429']} x 429",
            flush=True,
        )


def pids_of(children: list[Child]) -> list[int]:
    """The process ids of started instances."""
    return [child.pid for child in children]
