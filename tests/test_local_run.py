"""`make run` as a person uses it: the demo service comes up, answers a signed callback, and
Ctrl-C (even pressed twice) stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tools.call import post_signed
from tools.firestore_emulator import free_port
from tools.run_local import LOCAL_SETTINGS

pytestmark = pytest.mark.slow  # long: faults, processes; make test still runs it

ROOT = Path(__file__).resolve().parent.parent


def _wait_until_serving(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if "Stop: Ctrl-C" in log.read_text():
            return
        time.sleep(0.5)
    pytest.fail(f"make run did not come up:\n{log.read_text()}")


def test_make_run_serves_the_demo_base_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://localhost:{port}"
    log = tmp_path / "run.log"
    env = {**os.environ, "PORT": str(port), "LOCAL_ENV_FILE": str(tmp_path / "local.env")}
    env.pop("FIRESTORE_EMULATOR_HOST", None)  # make run starts its own
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.run_local"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_serving(process, log)
        started = psutil.Process(process.pid).children(recursive=True)
        assert len(started) >= 4  # emulator, two stand-ins, functions-framework

        assert requests.get(f"{base_url}/healthz", timeout=5).json() == {"status": "ok"}
        params = {
            "Location": "GetProxyAddress",
            "Worker": "alice@example.com",
            "ChannelType": "sms",
        }
        proxy = post_signed(
            f"{base_url}/callbacks/outgoing-conversation",
            params,
            LOCAL_SETTINGS["TWILIO_AUTH_TOKEN"],
        )
        assert proxy.status_code == 200, proxy.text
        assert proxy.json() == {"proxy_address": LOCAL_SETTINGS["TWILIO_SMS_NUMBER"]}
        listed = post_signed(
            f"{base_url}/callbacks/crm",
            {"Location": "GetCustomersList", "Worker": "alice@example.com", "PageSize": "5"},
            LOCAL_SETTINGS["TWILIO_AUTH_TOKEN"],
        )
        assert len(listed.json()["objects"]["customers"]) == 5

        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)  # an impatient second Ctrl-C
        assert process.wait(timeout=60) == 0, log.read_text()
        _, alive = psutil.wait_procs(started, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
