"""Figures from a run: latency percentiles, Airtable requests per second, visibility times."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from bench import config
from bench.client import Call
from bench.runner import RunResult

WORKLOAD_OPS = (
    "list_first_page",
    "list_next_page",
    "list_search",
    "details",
    "templates",
    "conversation_add",
    "routing",
    "participant_added",
)
LIST_OPS = ("list_first_page", "list_next_page", "list_search")
CHANGE_KINDS = ("edit", "reassign", "delete")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def latency(calls: list[Call]) -> dict[str, Any]:
    """Count, errors and p50/p95/p99/max in milliseconds."""
    seconds = [c.seconds for c in calls]
    return {
        "count": len(calls),
        "errors": sum(1 for c in calls if c.status != 200),
        "p50_ms": _ms(percentile(seconds, 50)),
        "p95_ms": _ms(percentile(seconds, 95)),
        "p99_ms": _ms(percentile(seconds, 99)),
        "max_ms": _ms(max(seconds) if seconds else None),
    }


def over_limit(call: Call) -> bool:
    """Took longer than the serverless limit, or never answered."""
    return call.status == 0 or call.seconds > config.SERVERLESS_LIMIT_SECONDS


def per_second(result: RunResult) -> list[int]:
    """Airtable requests in each second since the run started."""
    counts = {int(k): v for k, v in result.stats.get("per_second", {}).items()}
    start = int(result.started_unix)
    end = max([start + math.ceil(result.seconds), *counts])
    return [counts.get(second, 0) for second in range(start, end + 1)]


def summarize(result: RunResult) -> dict[str, Any]:
    """The JSON figures of one contender."""
    calls = result.calls
    by_op: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_op[call.op].append(call)
    workload = [c for c in calls if not c.probe]
    timeline = per_second(result)
    total = int(result.stats.get("total", 0))
    visibility: dict[str, list[float | None]] = {k: [] for k in CHANGE_KINDS}
    for seen in result.visibility:
        visibility[seen.kind].append(None if seen.seconds is None else round(seen.seconds, 1))
    return {
        "callbacks": len(calls),
        "workload_callbacks": len(workload),
        "probe_callbacks": len(calls) - len(workload),
        "callbacks_over_10s": sum(1 for c in calls if over_limit(c)),
        "callbacks_failed": sum(1 for c in workload if c.status != 200),
        "airtable_requests": total,
        "airtable_requests_by_kind": result.stats.get("by_kind", {}),
        "airtable_requests_per_1000_callbacks": round(1000 * total / max(1, len(calls)), 1),
        "max_airtable_requests_per_second": max(timeline, default=0),
        "seconds_over_5_airtable_requests": sum(1 for n in timeline if n > config.RATE_LIMIT),
        "http_429": int(result.stats.get("http_429", 0)),
        "airtable_statuses": result.stats.get("statuses", {}),
        "latency": {
            "all": latency(workload),
            "GetCustomersList": latency([c for op in LIST_OPS for c in by_op.get(op, [])]),
            **{op: latency(by_op.get(op, [])) for op in WORKLOAD_OPS},
        },
        "visibility_seconds": visibility,
        "visibility_max_seconds": {kind: _worst(values) for kind, values in visibility.items()},
        "changes_primed": all(seen.primed for seen in result.visibility),
        "peak_memory_mib": result.memory_mib,
        "peak_memory_mib_max": max(result.memory_mib, default=0.0),
        "routing_known_numbers": {
            "conversations": result.routing.known,
            "to_owner": result.routing.to_owner,
            "failed": result.routing.failed,
        },
        "run_seconds": round(result.seconds, 1),
        "airtable_requests_per_second": timeline,
        **result.extra,
    }


def _worst(values: list[float | None]) -> float | str | None:
    """The longest time, or "not seen" when some change never showed."""
    if not values:
        return None
    if any(v is None for v in values):
        return "not seen"
    return max(v for v in values if v is not None)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 1)


# The figures both contenders report as one number; each gets a quickstart ÷ ours ratio.
RATIO_FIGURES = (
    "callbacks_over_10s",
    "callbacks_failed",
    "airtable_requests_per_1000_callbacks",
    "max_airtable_requests_per_second",
    "seconds_over_5_airtable_requests",
    "http_429",
    "peak_memory_mib_max",
)


def ratios_of_figures(quickstart: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """quickstart ÷ ours for every single-number figure and every latency percentile
    (None where ours is 0: the quickstart's figure then stands on its own)."""
    ratios: dict[str, Any] = {
        key: ratio(quickstart.get(key), ours.get(key)) for key in RATIO_FIGURES
    }
    latency: dict[str, dict[str, float | None]] = {}
    for op, stats in (ours.get("latency") or {}).items():
        theirs = (quickstart.get("latency") or {}).get(op) or {}
        latency[op] = {
            q: ratio(theirs.get(q), stats.get(q)) for q in ("p50_ms", "p95_ms", "p99_ms")
        }
    ratios["latency"] = latency
    return ratios
