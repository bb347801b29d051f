"""Start and stop a local Firestore emulator (gcloud's cloud-firestore-emulator component)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import requests


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FirestoreEmulator:
    """A Firestore emulator process on a free loopback port, for tests, `make run` and the bench."""

    def __init__(self, port: int | None = None, project: str = "demo-frontline") -> None:
        self.port = port or free_port()
        self.project = project
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="firestore-emulator-"))
        self.log_path = self._log_dir / "emulator.log"

    @property
    def host(self) -> str:
        """The value for FIRESTORE_EMULATOR_HOST."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> FirestoreEmulator:
        """Start the emulator and wait until it answers."""
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            raise RuntimeError(
                "gcloud is not installed: the Firestore emulator needs the gcloud CLI"
            )
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [gcloud, "emulators", "firestore", "start", f"--host-port={self.host}", "--quiet"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Firestore emulator exited early; see {self.log_path}")
            if self.is_up() and "is now running" in self.log_path.read_text(errors="replace"):
                self._warm_up()
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"Firestore emulator did not start in {timeout:.0f}s; see {self.log_path}"
        )

    def _warm_up(self) -> None:
        """The emulator's first requests take seconds while its JVM warms up; make them now."""
        url = f"http://{self.host}/v1/projects/{self.project}/databases/(default)/documents"
        for _ in range(3):
            requests.post(f"{url}/warm-up", json={"fields": {}}, timeout=30)
            requests.get(f"{url}/warm-up", timeout=30)

    def is_up(self) -> bool:
        """True when the emulator answers HTTP on its port."""
        try:
            return requests.get(f"http://{self.host}/", timeout=1).ok
        except requests.RequestException:
            return False

    def reset(self) -> None:
        """Delete every document in the emulator's project."""
        url = (
            f"http://{self.host}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        )
        requests.delete(url, timeout=10).raise_for_status()

    def pause(self) -> None:
        """Freeze the emulator (it stops answering but keeps its data), as in an outage."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused emulator answer again."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the emulator and the Java process it started."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGCONT)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        # The emulator's JVM outlives the gcloud wrapper by a moment; wait until the port is free,
        # and kill what is left of the process group if it will not go.
        deadline = time.monotonic() + 15
        while self.is_up() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
