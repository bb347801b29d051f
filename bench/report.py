"""The report: a Markdown table (stdout and latest.md), raw figures (latest.json), a plot (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.metrics import CHANGE_KINDS, WORKLOAD_OPS

CONTENDERS = (("ours", "this service"), ("quickstart", "quickstart model"))
MEMORY_LIMIT_MIB = 256
REQUESTS_RATIO_TARGET = 50
LIST_P95_RATIO_TARGET = 20


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _get(figures: dict[str, Any], name: str, *path: str) -> Any:
    value: Any = figures.get(name)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def _within(value: Any, limit: float) -> bool | None:
    if value is None:
        return None
    return isinstance(value, int | float) and value <= limit


def claims(figures: dict[str, Any]) -> list[tuple[str, str, Any, Any, bool | None]]:
    """(claim, target, ours, quickstart, met) rows."""
    settings = figures["settings"]
    ratios = figures["ratios"]
    ttl = settings["cache_ttl_seconds"]
    refresh = settings["scheduler_every_seconds"]
    ours = figures.get("ours", {})
    quickstart = figures.get("quickstart", {})

    def both(key: str) -> tuple[Any, Any]:
        return ours.get(key), quickstart.get(key)

    over, over_q = both("callbacks_over_10s")
    failed, failed_q = both("callbacks_failed")
    http_429, http_429_q = both("http_429")
    peak, peak_q = both("max_airtable_requests_per_second")
    memory, memory_q = both("peak_memory_mib_max")
    p95 = _get(figures, "ours", "latency", "GetCustomersList", "p95_ms")
    p95_q = _get(figures, "quickstart", "latency", "GetCustomersList", "p95_ms")
    edit = _get(figures, "ours", "visibility_max_seconds", "edit")
    reassign = _get(figures, "ours", "visibility_max_seconds", "reassign")
    delete = _get(figures, "ours", "visibility_max_seconds", "delete")
    return [
        ("Callbacks over 10 s", "0", over, over_q, None if over is None else over == 0),
        (
            "Workload callbacks not answered 200",
            "0",
            failed,
            failed_q,
            None if failed is None else failed == 0,
        ),
        (
            "Airtable 429 answers",
            "0",
            http_429,
            http_429_q,
            None if http_429 is None else not http_429,
        ),
        ("Most Airtable requests in one second", "≤ 5", peak, peak_q, _within(peak, 5)),
        (
            "Airtable requests (quickstart ÷ ours)",
            f"≥ {REQUESTS_RATIO_TARGET}×",
            ours.get("airtable_requests"),
            f"{_cell(quickstart.get('airtable_requests'))} ({_cell(ratios['airtable_requests'])}×)",
            None
            if ratios["airtable_requests"] is None
            else ratios["airtable_requests"] >= REQUESTS_RATIO_TARGET,
        ),
        (
            "… not counting deletion sweeps (estimate)",
            f"≥ {REQUESTS_RATIO_TARGET}×",
            (ours.get("airtable_requests") or 0)
            - (ours.get("airtable_requests_in_sweeps_estimate") or 0),
            f"{_cell(quickstart.get('airtable_requests'))} "
            f"({_cell(ratios.get('airtable_requests_excluding_sweeps'))}×)",
            None,
        ),
        (
            "GetCustomersList p95, ms (quickstart ÷ ours)",
            f"≥ {LIST_P95_RATIO_TARGET}×",
            p95,
            f"{_cell(p95_q)} ({_cell(ratios['list_p95'])}×)",
            None if ratios["list_p95"] is None else ratios["list_p95"] >= LIST_P95_RATIO_TARGET,
        ),
        (
            "Edit visible, worst (s)",
            f"≤ {ttl + refresh} (TTL + a refresh)",
            edit,
            _get(figures, "quickstart", "visibility_max_seconds", "edit"),
            _within(edit, ttl + refresh),
        ),
        (
            "Reassignment visible, worst (s)",
            f"≤ {ttl + refresh} (TTL + a refresh)",
            reassign,
            _get(figures, "quickstart", "visibility_max_seconds", "reassign"),
            _within(reassign, ttl + refresh),
        ),
        (
            "Deletion visible, worst (s)",
            f"≤ {ttl + refresh} (TTL + a refresh; the webhook reports it)",
            delete,
            _get(figures, "quickstart", "visibility_max_seconds", "delete"),
            _within(delete, ttl + refresh),
        ),
        (
            "Peak memory of one instance (MiB)",
            f"< {MEMORY_LIMIT_MIB}",
            memory,
            memory_q,
            None if memory is None else memory < MEMORY_LIMIT_MIB,
        ),
    ]


def markdown(figures: dict[str, Any]) -> str:
    """The human-readable report."""
    s, m = figures["settings"], figures["machine"]
    lines = [
        "# Frontline bench: this service vs a model of the Airtable quickstart",
        "",
        f"`{figures['command']}` — {figures['finished_at']}, {m['cpu_count']} CPUs, "
        f"Python {m['python']}, took {figures['total_seconds'] / 60:.1f} min.",
        "",
        f"{s['customers']:,} contacts over {s['workers']:,} reps ({s['reps']:,} active); "
        f"{s['duration_seconds']:.0f} s of workload per contender at {s['rate']} callbacks/s "
        f"({figures['plan']['callbacks']:,} planned callbacks, "
        f"{figures['plan']['changes']} changes); {s['instances']} instances each; "
        f"Airtable stand-in at {s['airtable_latency_seconds']} s latency, 5 requests/s per base, "
        f"30 s penalty. Ours: CACHE_TTL_SECONDS={s['cache_ttl_seconds']}, "
        f"FULL_SWEEP_SECONDS={s['full_sweep_seconds']}, TASK_BUDGET_SECONDS="
        f"{s['task_budget_seconds']}, /tasks/refresh every {s['scheduler_every_seconds']} s; "
        f"initial full sync {_cell(figures.get('full_sync_seconds'))} s (not counted).",
        "",
        "## Claims",
        "",
        "| Claim | Target | This service | Quickstart model | Met |",
        "|---|---|---:|---:|:-:|",
    ]
    for name, target, ours, quickstart, ok in claims(figures):
        lines.append(f"| {name} | {target} | {_cell(ours)} | {_cell(quickstart)} | {_met(ok)} |")
    lines += ["", "## Latency per callback (ms)", ""]
    lines += [
        "| Callback | n | p50 | p95 | p99 | max | failed | n | p50 | p95 | p99 | max | failed |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        "| | **this service** | | | | | | **quickstart** | | | | | |",
    ]
    for op in ("all", "GetCustomersList", *WORKLOAD_OPS):
        cells = [op]
        for name, _ in CONTENDERS:
            stats = _get(figures, name, "latency", op) or {}
            keys = ("count", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors")
            cells += [_cell(stats.get(k)) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    ratios = figures["ratios"]
    lines += ["", "## Quickstart ÷ this service", ""]
    lines += ["| Latency | p50 | p95 | p99 |", "|---|--:|--:|--:|"]
    for op, by_q in (ratios.get("latency") or {}).items():
        cells = [_cell(by_q.get(q)) for q in ("p50_ms", "p95_ms", "p99_ms")]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines += ["", "| Figure | Ratio |", "|---|--:|"]
    for key, value in ratios.items():
        if key != "latency":
            lines.append(f"| {key} | {_cell(value) if value is not None else '– (ours is 0)'} |")
    lines += ["", "## Airtable and callbacks", "", "| | This service | Quickstart model |"]
    lines.append("|---|--:|--:|")
    for key, label in (
        ("workload_callbacks", "Workload callbacks"),
        ("probe_callbacks", "Probe callbacks (visibility polling)"),
        ("callbacks_failed", "Workload callbacks not answered 200"),
        ("airtable_requests", "Airtable requests (incl. refresh tasks)"),
        ("refresh_tasks_failed", "Scheduled /tasks/refresh calls not answered 200"),
        ("deletion_sweeps", "Deletion sweeps completed"),
        ("airtable_requests_in_sweeps_estimate", "… their Airtable requests (estimate)"),
        ("airtable_requests_per_1000_callbacks", "Airtable requests per 1,000 callbacks"),
        ("max_airtable_requests_per_second", "Most Airtable requests in one second"),
        ("seconds_over_5_airtable_requests", "Seconds with more than 5 requests"),
        ("http_429", "429 answers"),
        ("peak_memory_mib", "Peak memory per instance (MiB)"),
        ("changes_primed", "Before-change state seen on every instance"),
        ("run_seconds", "Run length incl. waiting for changes (s)"),
    ):
        ours, quickstart = _get(figures, "ours", key), _get(figures, "quickstart", key)
        lines.append(f"| {label} | {_cell(ours)} | {_cell(quickstart)} |")
    routed = [_get(figures, n, "routing_known_numbers") or {} for n, _ in CONTENDERS]
    lines.append(
        "| Known numbers routed to their owner | "
        + " | ".join(f"{r.get('to_owner', '–')} / {r.get('conversations', '–')}" for r in routed)
        + " |"
    )
    lines += ["", "## Seconds until each change shows on every instance", ""]
    lines += ["| Change | This service | Quickstart model |", "|---|---|---|"]
    for kind in CHANGE_KINDS:
        values = [_get(figures, n, "visibility_seconds", kind) for n, _ in CONTENDERS]
        shown = [
            ", ".join(_cell(v) if v is not None else "not seen" for v in (x or [])) for x in values
        ]
        lines.append(f"| {kind} | {shown[0] or '–'} | {shown[1] or '–'} |")
    lines += ["", *[f"- {note}" for note in figures["notes"]], ""]
    return "\n".join(lines)


def plot(figures: dict[str, Any], path: Path) -> None:
    """Latency percentiles per callback, and Airtable requests per second over time."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 10))
    ops = list(WORKLOAD_OPS)
    width = 0.13
    for c_index, (name, label) in enumerate(CONTENDERS):
        for q_index, q in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            values = [(_get(figures, name, "latency", op, q) or 0.0) for op in ops]
            offset = (c_index * 3 + q_index - 2.5) * width
            top.bar(
                [i + offset for i in range(len(ops))],
                values,
                width,
                label=f"{label} {q[:3]}",
                color=("tab:blue", "tab:orange")[c_index],
                alpha=(0.45, 0.7, 1.0)[q_index],
            )
    top.set_yscale("log")
    top.set_xticks(range(len(ops)), ops, rotation=15)
    top.set_ylabel("latency (ms, log)")
    top.axhline(10_000, color="red", linestyle="--", linewidth=1)
    top.set_title("Callback latency p50 / p95 / p99")
    top.legend(ncol=6, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    for name, label in CONTENDERS:
        series = _get(figures, name, "airtable_requests_per_second") or []
        bottom.plot(range(len(series)), series, label=label, linewidth=1)
    bottom.axhline(5, color="red", linestyle="--", linewidth=1, label="Airtable limit (5/s)")
    duration = figures["settings"]["duration_seconds"]
    bottom.axvline(duration, color="grey", linestyle=":", linewidth=1, label="end of workload")
    bottom.set_xlabel("seconds into the contender's run")
    bottom.set_ylabel("Airtable requests / s")
    bottom.set_title("Airtable requests per second (429s included)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(figures: dict[str, Any], out: Path) -> str:
    """Write latest.md, .json and .png under `out`, and a copy named after the mode (quick.* or
    full.*) that the other mode does not overwrite; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(figures)
    mode = "quick" if figures["settings"]["quick"] else "full"
    for stem in ("latest", mode):
        (out / f"{stem}.md").write_text(text, encoding="utf-8")
        (out / f"{stem}.json").write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        plot(figures, out / f"{stem}.png")
    return text
