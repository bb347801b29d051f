"""`python -m bench`: this service against a model of the quickstart, on loopback.

Setup (emulator, stand-ins, generated base) → this service (full sync, then the workload with
the scheduled refresh) → the base restored → the quickstart model (same workload) → report.
"""

from __future__ import annotations

import math
import os
import platform
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import config, dataset, metrics, report, workload
from bench.airtable_admin import AirtableAdmin
from bench.environment import PYTHON, Environment
from bench.memory import MemorySampler
from bench.ours import OurService
from bench.runner import RunResult, pids_of, run_contender


def run_ours(
    environment: Environment, options: config.Options, plan: workload.Plan
) -> tuple[RunResult, float]:
    """Contender A: start the instances, full sync, then the workload; returns the result and
    how long the full sync took."""
    service = OurService(environment, options).start()
    try:
        pids = pids_of(service.children)
        sync_memory = MemorySampler(pids).start()
        print("ours: initial full sync through /tasks/refresh", flush=True)
        sync_seconds = service.full_sync()
        sync_peaks = sync_memory.stop()
        result = run_contender(
            "ours",
            service.urls,
            pids,
            30.0,
            plan,
            environment,
            options,
            on_start=service.start_scheduler,
            on_stop=service.stop_scheduler,
        )
    finally:
        service.stop()
    result.extra["peak_memory_mib_full_sync"] = sync_peaks
    result.extra["peak_memory_mib_workload"] = result.memory_mib
    result.memory_mib = [max(a, b) for a, b in zip(sync_peaks, result.memory_mib, strict=True)]
    result.extra["refresh_tasks"] = [
        {"at": round(t.at, 1), "seconds": round(t.seconds, 1), "http_status": t.status, **t.reply}
        for t in sorted(service.tasks, key=lambda t: t.at)
    ]
    result.extra["refresh_tasks_failed"] = sum(1 for t in service.tasks if t.status != 200)
    sweeps = sum(1 for t in service.tasks if t.status == 200 and "sweep" in t.reply.get("kind", ""))
    result.extra["deletion_sweeps"] = sweeps
    # Each sweep lists every record id: one request per 100 records.
    result.extra["airtable_requests_in_sweeps_estimate"] = sweeps * math.ceil(
        options.customers / 100
    )
    return result, sync_seconds


def run_quickstart(
    environment: Environment, options: config.Options, plan: workload.Plan
) -> RunResult:
    """Contender B: N quickstart-model processes, then the workload."""
    processes = environment.processes
    children = [
        processes.start(
            f"quickstart-{index}",
            [
                PYTHON,
                "-m",
                "bench.quickstart_server",
                "--airtable-url",
                environment.airtable_url,
                "--twilio-url",
                environment.twilio_url,
            ],
        )
        for index in range(options.instances)
    ]
    try:
        urls = [processes.wait_for_url(child) for child in children]
        print(f"quickstart: {len(urls)} instances up", flush=True)
        return run_contender(
            "quickstart",
            urls,
            pids_of(children),
            config.SERVERLESS_LIMIT_SECONDS,
            plan,
            environment,
            options,
        )
    finally:
        for child in children:
            processes.stop(child)


def _settings(options: config.Options) -> dict[str, Any]:
    return {
        "customers": options.customers,
        "workers": options.workers,
        "reps": options.reps,
        "duration_seconds": options.duration,
        "rate": options.rate,
        "instances": options.instances,
        "airtable_latency_seconds": options.latency,
        "seed": options.seed,
        "quick": options.quick,
        "changes_per_kind": options.changes,
        "cache_ttl_seconds": options.cache_ttl,
        "full_sweep_seconds": options.full_sweep,
        "task_budget_seconds": options.task_budget,
        "scheduler_every_seconds": config.SCHEDULER_EVERY_SECONDS,
        "probe_timeout_seconds": options.probe_timeout,
        "probe_poll_seconds": options.poll_every,
        "quickstart_list_ttl_seconds": config.QUICKSTART_TTL_SECONDS,
    }


def _notes(options: config.Options) -> list[str]:
    return [
        "Quickstart model: per-instance, per-worker lists pulled in full (every page of "
        "`{owner} = '<worker>'`, sorted by name) when cold or 5 minutes old, otherwise one "
        "`IS_AFTER(CREATED_TIME(), …)` request per list callback; details, templates, routing, "
        "onConversationAdd and onParticipantAdded make one filtered request each "
        "(onParticipantAdded then fetches and updates the participant in Twilio); pyairtable's "
        "default retry "
        "(5 retries on 429); a callback is cut at 10 s (the client gives up at 10 s).",
        "Latencies are measured by the bench's client over loopback HTTP (signed like Twilio), "
        "open loop: actions start at planned Poisson times whatever the answers.",
        "Airtable requests are counted by the stand-in (429 answers included) over each "
        "contender's run; for this service they include the scheduled /tasks/refresh calls "
        "(incremental refresh, and the deletion sweep that lists every record id), not the "
        "initial full sync. Each completed deletion sweep is estimated at one request per 100 "
        "records; the ratio without sweeps shows what the sweep interval costs.",
        f"Visibility: a change is made through the stand-in's admin API; its owner's list "
        f"(searched) and the details are polled every {options.poll_every:.0f} s on one "
        "instance in turn; the time is when one instance first shows it and every other "
        f"instance, asked at once, agrees. A probe gives up after {options.probe_timeout:.0f} s "
        "('not seen'). Probe callbacks count in the callback and Airtable totals.",
        "Peak memory: PSS of each instance's process tree (for this service the "
        "functions-framework/gunicorn master and its worker), sampled every 0.5 s, "
        "full sync included.",
        "The Firestore emulator runs with JAVA_TOOL_OPTIONS=-Xmx10g: with its default heap "
        "it fills up at 100,000 contacts and stalls reads for seconds in garbage collection.",
        "The quickstart model starts cold (as after a deploy); this service starts after its "
        "full sync, as it would in production.",
    ]


def assemble(
    options: config.Options,
    argv: list[str],
    plan: workload.Plan,
    results: dict[str, RunResult],
    sync_seconds: float | None,
    started: float,
) -> dict[str, Any]:
    """Every figure of the run, as written to latest.json."""
    figures: dict[str, Any] = {
        "command": " ".join(["python -m bench", *argv]),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": _settings(options),
        "plan": {
            "actions": len(plan.actions),
            "callbacks": plan.callbacks,
            "changes": len(plan.changes),
        },
        "full_sync_seconds": None if sync_seconds is None else round(sync_seconds, 1),
    }
    for name, result in results.items():
        figures[name] = metrics.summarize(result)
    ours, quickstart = figures.get("ours", {}), figures.get("quickstart", {})
    figures["ratios"] = {
        "airtable_requests": metrics.ratio(
            quickstart.get("airtable_requests"), ours.get("airtable_requests")
        ),
        "airtable_requests_excluding_sweeps": metrics.ratio(
            quickstart.get("airtable_requests"),
            (ours.get("airtable_requests") or 0)
            - (ours.get("airtable_requests_in_sweeps_estimate") or 0),
        ),
        "list_p95": metrics.ratio(
            (quickstart.get("latency") or {}).get("GetCustomersList", {}).get("p95_ms"),
            (ours.get("latency") or {}).get("GetCustomersList", {}).get("p95_ms"),
        ),
        **metrics.ratios_of_figures(quickstart, ours),
    }
    figures["total_seconds"] = round(time.monotonic() - started, 1)
    figures["notes"] = _notes(options)
    return figures


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 when it completed (whatever the figures say)."""
    argv = sys.argv[1:] if argv is None else argv
    options = config.parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    data_file = Path(tempfile.mkdtemp(prefix="frontline-bench-data-")) / "base.json"
    print(
        f"setup: generating {options.customers:,} contacts over {options.workers:,} reps "
        f"(seed {options.seed})",
        flush=True,
    )
    book = dataset.build(options.customers, options.workers, options.seed, data_file)
    plan = workload.make_plan(
        book, options.reps, options.duration, options.rate, options.changes, options.seed
    )
    print(
        f"setup: plan of {len(plan.actions):,} actions ({plan.callbacks:,} callbacks) and "
        f"{len(plan.changes)} changes over {options.duration:.0f} s",
        flush=True,
    )
    environment = Environment(options, data_file)
    results: dict[str, RunResult] = {}
    sync_seconds: float | None = None
    try:
        environment.start()
        if "ours" in options.contenders:
            results["ours"], sync_seconds = run_ours(environment, options, plan)
        if "quickstart" in options.contenders:
            if results:
                print("setup: restoring the base for the next contender", flush=True)
                AirtableAdmin(environment.airtable_url).load(data_file)
                if results["ours"].stats.get("http_429"):
                    time.sleep(config.PENALTY_SECONDS + 1)
            results["quickstart"] = run_quickstart(environment, options, plan)
    except KeyboardInterrupt:
        print("interrupted: stopping every process", flush=True)
        return 130
    finally:
        environment.stop()
        data_file.unlink(missing_ok=True)
    figures = assemble(options, argv, plan, results, sync_seconds, started)
    text = report.write(figures, options.out)
    print(text, flush=True)
    print(f"wrote {options.out}/latest.md, latest.json and latest.png", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
