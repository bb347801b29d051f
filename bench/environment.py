"""Child processes: the Firestore emulator, the Airtable and Twilio stand-ins, service instances.

Every process is started in its own session and stopped (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import requests

from bench import config
from tools.firestore_emulator import FirestoreEmulator

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PROGRESS_EVERY_SECONDS = 10.0
# The emulator keeps every document in its JVM heap; at 100,000 contacts the default heap (a
# quarter of RAM) fills and garbage collection stalls reads for seconds, which real Firestore
# does not do.
EMULATOR_JAVA_OPTIONS = "-Xmx10g"


@dataclass
class Child:
    """One started process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


class Processes:
    """Starts child processes and stops every one of them, whatever happens."""

    def __init__(self) -> None:
        self.log_dir = Path(tempfile.mkdtemp(prefix="frontline-bench-"))
        self._children: list[Child] = []
        self._lock = threading.Lock()

    def start(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> Child:
        """Start `command` in the project directory, stdout and stderr to a log file."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log_path)
        with self._lock:
            self._children.append(child)
        return child

    def wait_for_url(self, child: Child, timeout: float = 120.0) -> str:
        """The URL a stand-in prints on its first line once it is serving."""
        started = time.monotonic()
        deadline = started + timeout
        reported = started
        while time.monotonic() < deadline:
            if time.monotonic() - reported >= PROGRESS_EVERY_SECONDS:
                reported = time.monotonic()
                print(
                    f"setup: {child.name} still starting ({reported - started:.0f} s)", flush=True
                )
            text = child.log_path.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("http://"):
                    return line.strip()
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited early; see {child.log_path}")
            time.sleep(0.1)
        raise RuntimeError(f"{child.name} did not start in {timeout:.0f}s; see {child.log_path}")

    def stop(self, child: Child) -> None:
        """Stop one child and its process group."""
        with self._lock:
            if child in self._children:
                self._children.remove(child)
        _terminate(child.process)

    def stop_all(self) -> None:
        """Stop every child still running."""
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            _terminate(child.process)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    """Wait until GET `url` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")


class Environment:
    """The backdrop: Firestore emulator, Airtable stand-in (with the base), Twilio stand-in."""

    def __init__(self, options: config.Options, data_file: Path) -> None:
        self.options = options
        self.data_file = data_file
        self.processes = Processes()
        self.emulator = FirestoreEmulator(project="demo-frontline")
        self.airtable_url = ""
        self.twilio_url = ""

    def start(self) -> Environment:
        """Start everything; progress lines on stdout."""
        print(f"setup: starting the Firestore emulator ({EMULATOR_JAVA_OPTIONS})", flush=True)
        previous = os.environ.get("JAVA_TOOL_OPTIONS")
        os.environ["JAVA_TOOL_OPTIONS"] = EMULATOR_JAVA_OPTIONS
        try:
            self.emulator.start()
        finally:
            if previous is None:
                del os.environ["JAVA_TOOL_OPTIONS"]
            else:
                os.environ["JAVA_TOOL_OPTIONS"] = previous
        print(f"setup: Firestore emulator on {self.emulator.host}", flush=True)
        print(f"setup: starting the Airtable stand-in, loading {self.data_file.name}", flush=True)
        airtable = self.processes.start(
            "airtable",
            [
                PYTHON,
                "-m",
                "standins.airtable",
                "--port",
                "0",
                "--load",
                str(self.data_file),
                "--latency",
                str(self.options.latency),
                "--rate-limit",
                str(config.RATE_LIMIT),
                "--penalty",
                str(config.PENALTY_SECONDS),
                "--token",
                config.AIRTABLE_TOKEN,
            ],
        )
        self.airtable_url = self.processes.wait_for_url(airtable, timeout=300)
        print(f"setup: Airtable stand-in on {self.airtable_url}", flush=True)
        twilio = self.processes.start(
            "twilio",
            [
                PYTHON,
                "-m",
                "standins.twilio",
                "--port",
                "0",
                "--account-sid",
                config.ACCOUNT_SID,
                "--auth-token",
                config.AUTH_TOKEN,
            ],
        )
        self.twilio_url = self.processes.wait_for_url(twilio)
        print(f"setup: Twilio stand-in on {self.twilio_url}", flush=True)
        return self

    def stop(self) -> None:
        """Stop every process this environment started."""
        self.processes.stop_all()
        self.emulator.stop()

    def __enter__(self) -> Environment:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
