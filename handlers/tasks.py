"""/tasks/refresh: the scheduled refresh (incremental, sweep) or a step of the full sync."""

from __future__ import annotations

from handlers.base import Params, Reply, Services


def refresh(params: Params, services: Services) -> Reply:
    """Run one refresh task; `full=1` starts a full resync. Reports what it did."""
    full = (params.text("full", max_length=8) or "").lower() in ("1", "true", "yes")
    result = services.directory.refresher.run_task(full=full)
    return Reply(result.to_json())
