"""The bench's options (from the command line) and the fixed credentials of its local stand-ins."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from demo.generate import BASE_ID

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token"  # noqa: S105 - local stand-ins only
AIRTABLE_TOKEN = "bench-airtable-token"  # noqa: S105
REFRESH_TOKEN = "bench-refresh-token"  # noqa: S105
SMS_NUMBER = "+14155550100"
WHATSAPP_NUMBER = "+14155550111"
AIRTABLE_BASE_ID = BASE_ID
RATE_LIMIT = 5.0
PENALTY_SECONDS = 30.0
# The quickstart's serverless functions are killed after this long.
SERVERLESS_LIMIT_SECONDS = 10.0
# The quickstart keeps a worker's list in memory this long before pulling it again.
QUICKSTART_TTL_SECONDS = 300.0
SCHEDULER_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Options:
    """Everything one bench run is configured with."""

    customers: int
    workers: int
    reps: int
    duration: float
    rate: float
    instances: int
    latency: float
    seed: int
    quick: bool
    out: Path
    changes: int  # edits, reassignments and deletions (each) per contender
    cache_ttl: int
    full_sweep: int
    task_budget: int
    probe_timeout: float
    poll_every: float
    contenders: tuple[str, ...]


def parse(argv: list[str] | None = None) -> Options:
    """Options from the command line; --quick changes the defaults not given explicitly."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark this service against a model of Twilio's Airtable quickstart.",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 contacts, 100 reps, short")
    parser.add_argument("--customers", type=int, help="contacts (100,000; quick 10,000)")
    parser.add_argument("--workers", type=int, help="reps owning them (1,000; quick 100)")
    parser.add_argument("--reps", type=int, help="reps active in the workload (all workers)")
    parser.add_argument("--duration", type=float, help="seconds of workload (300; quick 90)")
    parser.add_argument("--rate", type=float, help="callbacks per second (5; quick 4)")
    parser.add_argument("--instances", type=int, default=4, help="instances per contender")
    parser.add_argument("--latency", type=float, default=0.2, help="Airtable latency, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--changes", type=int, help="changes of each kind (3; quick 2)")
    parser.add_argument("--cache-ttl", type=int, default=60, help="CACHE_TTL_SECONDS")
    parser.add_argument(
        "--full-sweep", type=int, default=3600, help="FULL_SWEEP_SECONDS (the service's default)"
    )
    parser.add_argument("--task-budget", type=int, default=480, help="TASK_BUDGET_SECONDS")
    parser.add_argument("--probe-timeout", type=float, help="give up on a change after (s)")
    parser.add_argument("--poll-every", type=float, default=10.0, help="probe poll period (s)")
    parser.add_argument(
        "--only", choices=("ours", "quickstart"), help="run one contender (for debugging)"
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    workers = args.workers or (100 if quick else 1_000)
    return Options(
        customers=args.customers or (10_000 if quick else 100_000),
        workers=workers,
        reps=min(args.reps or workers, workers),
        duration=args.duration or (90.0 if quick else 300.0),
        rate=args.rate or (4.0 if quick else 5.0),
        instances=args.instances,
        latency=args.latency,
        seed=args.seed,
        quick=quick,
        out=args.out,
        changes=args.changes if args.changes is not None else (2 if quick else 3),
        cache_ttl=args.cache_ttl,
        full_sweep=args.full_sweep,
        task_budget=args.task_budget,
        probe_timeout=args.probe_timeout or (150.0 if quick else 600.0),
        poll_every=args.poll_every,
        contenders=(args.only,) if args.only else ("ours", "quickstart"),
    )
