"""The Airtable stand-in's admin API: statistics, reloading the base, and a person's edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from bench import config

CUSTOMERS = "Customers"


class AirtableAdmin:
    """Calls /_standin/… (never counted nor rate limited)."""

    def __init__(self, url: str, base_id: str = config.AIRTABLE_BASE_ID) -> None:
        self._url = url.rstrip("/") + "/_standin"
        self._records = f"{self._url}/bases/{base_id}/tables/{CUSTOMERS}/records"

    def stats(self) -> dict[str, Any]:
        """Counts by kind, http_429, statuses and the per-second histogram."""
        response = requests.get(f"{self._url}/stats", timeout=30)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def reset_stats(self) -> None:
        """Zero every counter."""
        requests.post(f"{self._url}/stats/reset", timeout=30).raise_for_status()

    def load(self, data_file: Path) -> dict[str, int]:
        """Replace the tables with the data file's records (restores the original base)."""
        response = requests.post(
            f"{self._url}/load",
            data=data_file.read_bytes(),
            headers={"Content-Type": "application/json"},
            timeout=600,
        )
        response.raise_for_status()
        loaded: dict[str, int] = response.json()["loaded"]
        return loaded

    def update(self, record_id: str, fields: dict[str, Any]) -> None:
        """Change some cells of one customer."""
        response = requests.patch(
            f"{self._records}/{record_id}", json={"fields": fields}, timeout=30
        )
        response.raise_for_status()

    def delete(self, record_id: str) -> None:
        """Delete one customer."""
        requests.delete(f"{self._records}/{record_id}", timeout=30).raise_for_status()
