"""Contender A, this service: N functions-framework processes sharing the Firestore emulator,
the initial full sync through /tasks/refresh, and a scheduler calling it every minute."""

from __future__ import annotations

import itertools
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench import config
from bench.airtable_admin import AirtableAdmin
from bench.environment import Child, Environment, wait_healthy
from tools.firestore_emulator import free_port

FUNCTIONS_FRAMEWORK = str(Path(sys.executable).parent / "functions-framework")
SYNC_PROGRESS_EVERY = 30.0


def service_env(environment: Environment, options: config.Options, prefix: str) -> dict[str, str]:
    """The settings every instance gets."""
    return {
        "TWILIO_ACCOUNT_SID": config.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": config.AUTH_TOKEN,
        "TWILIO_SMS_NUMBER": config.SMS_NUMBER,
        "TWILIO_WHATSAPP_NUMBER": config.WHATSAPP_NUMBER,
        "TWILIO_API_BASE_URL": environment.twilio_url,
        "AIRTABLE_API_KEY": config.AIRTABLE_TOKEN,
        "AIRTABLE_BASE_ID": config.AIRTABLE_BASE_ID,
        "AIRTABLE_ENDPOINT_URL": environment.airtable_url,
        "GOOGLE_CLOUD_PROJECT": "demo-frontline",
        "FIRESTORE_EMULATOR_HOST": environment.emulator.host,
        "FIRESTORE_COLLECTION_PREFIX": prefix,
        "REFRESH_TOKEN": config.REFRESH_TOKEN,
        "CACHE_TTL_SECONDS": str(options.cache_ttl),
        "FULL_SWEEP_SECONDS": str(options.full_sweep),
        "TASK_BUDGET_SECONDS": str(options.task_budget),
        "LOG_LEVEL": "WARNING",
    }


@dataclass(frozen=True)
class TaskCall:
    """One call of /tasks/refresh by the scheduler."""

    at: float
    seconds: float
    status: int
    reply: dict[str, Any]


class OurService:
    """Starts the instances, runs the full sync, and plays Cloud Scheduler."""

    def __init__(self, environment: Environment, options: config.Options) -> None:
        self.environment = environment
        self.options = options
        self.prefix = f"bench{secrets.token_hex(4)}_"
        self.children: list[Child] = []
        self.urls: list[str] = []
        self.tasks: list[TaskCall] = []
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._started = time.monotonic()
        self._running: list[threading.Thread] = []

    def start(self) -> OurService:
        """Start N instances and wait until each answers /healthz."""
        env = service_env(self.environment, self.options, self.prefix)
        for index in range(self.options.instances):
            port = free_port()
            command = [
                FUNCTIONS_FRAMEWORK,
                "--target=frontline",
                "--source=main.py",
                f"--port={port}",
                "--host=127.0.0.1",
            ]
            child = self.environment.processes.start(f"ours-{index}", command, env)
            self.children.append(child)
            self.urls.append(f"http://127.0.0.1:{port}")
        for url in self.urls:
            wait_healthy(f"{url}/healthz")
        print(f"ours: {len(self.urls)} instances up (prefix {self.prefix})", flush=True)
        return self

    def refresh(self, full: bool = False, url: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST /tasks/refresh as Cloud Scheduler does; status and reply."""
        target = url or self.urls[next(self._turn) % len(self.urls)]
        response = requests.post(
            f"{target}/tasks/refresh" + ("?full=1" if full else ""),
            headers={"Authorization": f"Bearer {config.REFRESH_TOKEN}"},
            timeout=self.options.task_budget + 120,
        )
        try:
            reply: dict[str, Any] = response.json()
        except ValueError:
            reply = {"text": response.text[:200]}
        return response.status_code, reply

    def full_sync(self) -> float:
        """Run the full sync to completion (a call per budget); returns how long it took."""
        started = time.monotonic()
        done = threading.Event()
        ticker = threading.Thread(target=self._sync_progress, args=(started, done), daemon=True)
        ticker.start()
        try:
            return self._full_sync(started)
        finally:
            done.set()

    def _sync_progress(self, started: float, done: threading.Event) -> None:
        admin = AirtableAdmin(self.environment.airtable_url)
        while not done.wait(SYNC_PROGRESS_EVERY):
            pages = admin.stats()["by_kind"]["list"]
            print(
                f"ours: full sync running: {pages:,} Airtable pages so far, "
                f"{time.monotonic() - started:.0f}s",
                flush=True,
            )

    def _full_sync(self, started: float) -> float:
        full = True
        while True:
            status, reply = self.refresh(full=full)
            full = False
            elapsed = time.monotonic() - started
            print(
                f"ours: full sync {reply.get('status', status)}: {reply.get('pages', 0)} pages, "
                f"{reply.get('customers', 0):,} customers, {elapsed:.0f}s",
                flush=True,
            )
            if status == 200 and reply.get("status") == "ok" and reply.get("kind") == "full_sync":
                return elapsed
            if status != 200 or reply.get("kind") == "busy":
                time.sleep(5)

    def start_scheduler(self, started: float) -> None:
        """Call /tasks/refresh every minute from now on (each call in its own thread); times are
        recorded from `started` (monotonic)."""
        self._started = started
        self._scheduler = threading.Thread(target=self._schedule, name="scheduler", daemon=True)
        self._scheduler.start()

    def stop_scheduler(self) -> None:
        """Stop scheduling; wait for calls in flight."""
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join()
        for thread in self._running:
            thread.join(timeout=self.options.task_budget + 130)

    def _schedule(self) -> None:
        while not self._stop.wait(config.SCHEDULER_EVERY_SECONDS):
            thread = threading.Thread(target=self._task, name="refresh-task", daemon=True)
            self._running.append(thread)
            thread.start()

    def _task(self) -> None:
        at = time.monotonic() - self._started
        started = time.monotonic()
        try:
            status, reply = self.refresh()
        except requests.RequestException as error:
            status, reply = -1, {"error": repr(error)}
        self.tasks.append(TaskCall(at, time.monotonic() - started, status, reply))

    def stop(self) -> None:
        """Stop the instances."""
        for child in self.children:
            self.environment.processes.stop(child)
        self.children = []
