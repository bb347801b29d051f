"""`make run`: the service on http://localhost:8080 with the demo base, all on this machine.

Starts the Firestore emulator, the Airtable stand-in loaded with demo/base.json, the Twilio
Conversations stand-in and functions-framework; runs the first full sync; calls the refresh task
every minute as Cloud Scheduler would; Ctrl-C stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tools.firestore_emulator import FirestoreEmulator, free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_BASE = ROOT / "demo" / "base.json"
# Where `tools.call` finds the token and URL of this run.
LOCAL_ENV = Path(os.environ.get("LOCAL_ENV_FILE", ROOT / ".run" / "local.env"))
PORT = int(os.environ.get("PORT", "8080"))
CALLBACKS = {
    "crm": "Frontline > Manage > Callbacks: CRM callback URL",
    "outgoing-conversation": "Frontline > Manage > Callbacks: Outgoing conversations callback URL",
    "templates": "Frontline > Manage > Callbacks: Templates callback URL",
    "routing": "Frontline > Manage > Routing: custom routing callback URL",
    "twilio-conversations": "Conversations > Services > (Frontline service) > Webhooks: "
    "pre- and post-event URL",
}
LOCAL_SETTINGS = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "local-auth-token",
    "TWILIO_SMS_NUMBER": "+14155550100",
    "TWILIO_WHATSAPP_NUMBER": "+14155550111",
    "AIRTABLE_API_KEY": "local-airtable-token",
    "GOOGLE_CLOUD_PROJECT": "demo-frontline",
    "REFRESH_TOKEN": "local-refresh-token",
    "DEFAULT_WORKER": "alice@example.com",
    "LOG_LEVEL": "INFO",
}


def start(command: list[str], env: dict[str, str], name: str) -> subprocess.Popen[str]:
    """Start a child process in its own session, its output prefixed by `name`."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    threading.Thread(target=_relay, args=(process, name), daemon=True).start()
    return process


def _relay(process: subprocess.Popen[str], name: str) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        print(f"[{name}] {line.rstrip()}", flush=True)


def wait_for(url: str, timeout: float = 60) -> None:
    """Wait until `url` answers HTTP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f}s")


def refresh(base_url: str, token: str, full: bool = False) -> dict[str, object]:
    """Call the refresh task as Cloud Scheduler would, until it finishes what it started."""
    while True:
        response = requests.post(
            f"{base_url}/tasks/refresh" + ("?full=1" if full else ""),
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        )
        result: dict[str, object] = response.json()
        if response.status_code != 200 or result.get("status") != "in_progress":
            return result
        full = False


def main() -> int:
    python = sys.executable
    bin_dir = Path(python).parent
    base = json.loads(DEMO_BASE.read_text())
    processes: list[subprocess.Popen[str]] = []
    emulator = FirestoreEmulator()
    try:
        print("starting the Firestore emulator…", flush=True)
        emulator.start()
        airtable_port, twilio_port = free_port(), free_port()
        env = {**os.environ, **LOCAL_SETTINGS, "FIRESTORE_EMULATOR_HOST": emulator.host}
        env.pop("PUBLIC_BASE_URL", None)
        env["AIRTABLE_BASE_ID"] = base["base_id"]
        env["AIRTABLE_ENDPOINT_URL"] = f"http://127.0.0.1:{airtable_port}"
        env["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{twilio_port}"
        airtable = [python, "-m", "standins.airtable", "--port", str(airtable_port)]
        airtable += ["--load", str(DEMO_BASE), "--token", env["AIRTABLE_API_KEY"]]
        processes.append(start(airtable, env, "airtable"))
        twilio = [python, "-m", "standins.twilio", "--port", str(twilio_port)]
        twilio += ["--account-sid", env["TWILIO_ACCOUNT_SID"]]
        twilio += ["--auth-token", env["TWILIO_AUTH_TOKEN"]]
        processes.append(start(twilio, env, "twilio"))
        wait_for(f"{env['AIRTABLE_ENDPOINT_URL']}/_standin/health")
        wait_for(env["TWILIO_API_BASE_URL"])
        service = [str(bin_dir / "functions-framework"), "--target=frontline"]
        service += ["--source=main.py", f"--port={PORT}"]
        processes.append(start(service, env, "frontline"))
        base_url = f"http://localhost:{PORT}"
        wait_for(f"{base_url}/healthz")
        print(f"full sync of the demo base: {refresh(base_url, env['REFRESH_TOKEN'], full=True)}")
        LOCAL_ENV.parent.mkdir(exist_ok=True)
        LOCAL_ENV.write_text(
            "".join(f"{k}={env[k]}\n" for k in ("TWILIO_AUTH_TOKEN", "REFRESH_TOKEN"))
            + f"PUBLIC_BASE_URL={base_url}\n"
        )
        conversation = requests.post(
            f"{env['TWILIO_API_BASE_URL']}/v1/Conversations",
            data={"FriendlyName": "demo inbound conversation"},
            auth=(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"]),
            timeout=10,
        ).json()["sid"]
        print_guide(base_url, conversation)
        threading.Thread(
            target=_scheduler, args=(base_url, env["REFRESH_TOKEN"]), daemon=True
        ).start()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C while stopping would leave the emulator and stand-ins running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping…", flush=True)
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        emulator.stop()
    return 0


def _scheduler(base_url: str, token: str) -> None:
    while True:
        time.sleep(60)
        try:
            refresh(base_url, token)
        except requests.RequestException as error:
            print(f"[scheduler] refresh failed: {error}", flush=True)


def print_guide(base_url: str, conversation: str) -> None:
    """The five callback URLs, where each goes, and how to call them signed."""
    print("\nThe service is running with the demo base (reps alice@, bob@, carol@example.com).\n")
    for name, where in CALLBACKS.items():
        print(f"  {base_url}/callbacks/{name}\n      → {where}")
    print(
        "\nCall them signed exactly as Twilio does, for example:\n"
        "  .venv/bin/python -m tools.call crm Location=GetCustomersList "
        "Worker=alice@example.com PageSize=30\n"
        "  .venv/bin/python -m tools.call outgoing-conversation Location=GetProxyAddress "
        "Worker=alice@example.com ChannelType=sms\n"
        f"  .venv/bin/python -m tools.call routing ConversationSid={conversation} "
        "MessagingBinding.Address=whatsapp:+14155550134\n"
        f"(the Twilio stand-in holds {conversation}, an inbound conversation to route)\n"
        f"Health: curl {base_url}/healthz    Stop: Ctrl-C\n",
        flush=True,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
