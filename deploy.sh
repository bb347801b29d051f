#!/usr/bin/env bash
# Deploy the Frontline integration service to Google Cloud Functions (2nd gen).
#
# One command sets up everything the function needs (APIs, Firestore, service
# accounts, secrets, the function, the refresh scheduler job) and prints the
# callback URLs to paste into the Twilio console. Safe to run again: every
# resource is described before it is created or changed. `./deploy.sh --help`
# lists the options; README.md ("Deploy") explains each step.
set -euo pipefail

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 3))); then
  echo "deploy.sh needs bash 4.3 or newer (on macOS: brew install bash)" >&2
  exit 1
fi

readonly RUNTIME="python312"
readonly ENTRY_POINT="frontline"
readonly APIS=(
  cloudfunctions.googleapis.com
  run.googleapis.com
  cloudbuild.googleapis.com
  artifactregistry.googleapis.com
  secretmanager.googleapis.com
  firestore.googleapis.com
  cloudscheduler.googleapis.com
)
readonly URL_PLACEHOLDER="https://FUNCTION_URL"

# Non-secret settings deploy.sh passes to the function from the env file.
readonly PASSED_SETTINGS=(
  TWILIO_ACCOUNT_SID TWILIO_SMS_NUMBER TWILIO_WHATSAPP_NUMBER PROXY_NUMBERS
  TWILIO_SIGNATURE_VALIDATION
  AIRTABLE_BASE_ID AIRTABLE_ENDPOINT_URL AIRTABLE_CUSTOMERS_TABLE AIRTABLE_TEMPLATES_TABLE
  AIRTABLE_FIELDS AIRTABLE_REQUESTS_PER_SECOND
  FIRESTORE_DATABASE FIRESTORE_COLLECTION_PREFIX
  DEFAULT_WORKER DEFAULT_PHONE_REGION CACHE_TTL_SECONDS FULL_SWEEP_SECONDS TASK_BUDGET_SECONDS
  ALLOW_CUSTOMER_DELETE LOG_LEVEL
)
# Settings deploy.sh computes itself; an env file value for them is replaced.
readonly COMPUTED_SETTINGS=(GOOGLE_CLOUD_PROJECT PUBLIC_BASE_URL SCHEDULER_SERVICE_ACCOUNT)
# Settings that must never reach a deployed function.
readonly LOCAL_ONLY_SETTINGS=(
  FIRESTORE_EMULATOR_HOST TWILIO_API_BASE_URL GOOGLE_APPLICATION_CREDENTIALS
  PORT K_SERVICE K_REVISION K_CONFIGURATION FUNCTION_TARGET FUNCTION_SIGNATURE_TYPE
)
# Secrets: setting that holds the value | setting that names the secret | secret id suffix | required.
readonly SECRET_SPECS=(
  "TWILIO_AUTH_TOKEN|TWILIO_AUTH_TOKEN_SECRET|twilio-auth-token|required"
  "AIRTABLE_API_KEY|AIRTABLE_API_KEY_SECRET|airtable-api-key|required"
  "REFRESH_TOKEN|REFRESH_TOKEN_SECRET|refresh-token|optional"
)

usage() {
  cat <<'EOF'
Usage: ./deploy.sh --project PROJECT_ID [options]

Deploy the Frontline integration service as a Cloud Functions (2nd gen) HTTP
function, with its Firestore database, service accounts, secrets and the
Cloud Scheduler job that keeps the contact cache fresh.

Options:
  --project ID           Google Cloud project (default: GOOGLE_CLOUD_PROJECT from the env file)
  --region REGION        region of the function, the scheduler job and a new
                         Firestore database (default: us-central1)
  --name NAME            function name; also prefixes the secrets, service
                         accounts and scheduler job (default: frontline)
  --env-file FILE        settings file, KEY=VALUE lines (default: .env)
  --memory SIZE          memory per instance (default: 512Mi)
  --cpu N                vCPUs per instance (default: 1)
  --timeout SECONDS      request timeout, up to 3600s; the first full sync of a
                         large base runs long (default: 540s)
  --min-instances N      instances kept warm (default: 0)
  --max-instances N      instance limit (default: 20)
  --concurrency N        requests per instance at once; above 1 needs --cpu 1 or
                         more; the service is thread-safe (default: 8)
  --firestore-location L location for a new Firestore database (default: the region)
  --keep-settings        start from the settings of the deployed function and
                         apply only those present in the env file (an empty
                         value removes a setting); used by cloudbuild.yaml
  --no-first-run         do not run the scheduler job once after deploying
  --dry-run              print every gcloud command instead of running it
                         (secrets shown as ***); needs no Google credentials
  -h, --help             show this help

Secret values (TWILIO_AUTH_TOKEN or AUTH_TOKEN, AIRTABLE_API_KEY, REFRESH_TOKEN)
go to Secret Manager as NAME-twilio-auth-token, NAME-airtable-api-key and
NAME-refresh-token; the function only gets their names. A secret whose value is
not in the env file must already exist (REFRESH_TOKEN is optional).
EOF
}

die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 1
}

# A note that explains a conditional step of a dry run.
note() {
  if ((DRY_RUN)); then
    printf '# %s\n' "$*"
  fi
}

warn() {
  printf 'deploy.sh: warning: %s\n' "$*" >&2
}

info() {
  if ((DRY_RUN)); then
    printf '# %s\n' "$*"
  else
    printf '==> %s\n' "$*" >&2
  fi
}

# Print a command so that it can be pasted into a shell.
quote_cmd() {
  local out="" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      out+="$arg "
    else
      out+="'${arg//\'/\'\\\'\'}' "
    fi
  done
  printf '%s' "${out% }"
}

# Run a command that changes something (in a dry run, print it).
run() {
  if ((DRY_RUN)); then
    printf '%s\n' "$(quote_cmd "$@")"
    return 0
  fi
  printf '+ %s\n' "$(quote_cmd "$@")" >&2
  "$@"
}

# Run a command with a secret on its standard input. The value never appears in
# a process argument list (printf is a shell builtin) and is shown as ***.
run_with_secret() {
  local value=$1
  shift
  if ((DRY_RUN)); then
    printf "printf '%%s' '***' | %s\n" "$(quote_cmd "$@")"
    return 0
  fi
  printf "+ printf '%%s' '***' | %s\n" "$(quote_cmd "$@")" >&2
  printf '%s' "$value" | "$@"
}

# IAM changes can take a moment to propagate after a service account is created.
run_retrying() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if run "$@"; then
      return 0
    fi
    ((attempt < 5)) || break
    warn "retrying in 10s (IAM changes can take a moment to propagate)"
    sleep 10
  done
  die "command failed: $(quote_cmd "$@")"
}

# Run a read-only gcloud command. Prints its output and returns 0 when the
# resource exists, returns 1 when it does not, and stops on any other error.
# In a dry run it prints the command and returns 1 (nothing is known to exist).
QUERY_OUT=""
query() {
  QUERY_OUT=""
  if ((DRY_RUN)); then
    printf '%s\n' "$(quote_cmd "$@")"
    return 1
  fi
  local err status=0
  err=$(mktemp)
  QUERY_OUT=$("$@" 2>"$err") || status=$?
  if ((status == 0)); then
    rm -f "$err"
    return 0
  fi
  if grep -Eqi 'NOT_FOUND|not found|does not exist|status=\[404\]' "$err"; then
    rm -f "$err"
    return 1
  fi
  cat "$err" >&2
  rm -f "$err"
  die "command failed: $(quote_cmd "$@")"
}

# True when the IAM policy printed by the given get-iam-policy command has ROLE for MEMBER.
has_binding() {
  local role=$1 member=$2
  shift 2
  if ((DRY_RUN)); then
    printf '%s\n' "$(quote_cmd "$@" --flatten=bindings[].members \
      '--format=value(bindings.role,bindings.members)')"
    return 1
  fi
  local policy
  policy=$("$@" --flatten='bindings[].members' \
    --format='value(bindings.role,bindings.members)') ||
    die "could not read the IAM policy: $(quote_cmd "$@")"
  grep -Fxq -- "${role}"$'\t'"${member}" <<<"$policy"
}

# ---------------------------------------------------------------------------
# The env file: KEY=VALUE lines, read without running it.

declare -A ENV_VALUES=()

unquote_double() {
  local s=$1 out="" i c
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    if [[ $c == "\\" && $((i + 1)) -lt ${#s} ]]; then
      i=$((i + 1))
      case ${s:i:1} in
        n) out+=$'\n' ;;
        '"' | "\\") out+=${s:i:1} ;;
        *) out+="\\${s:i:1}" ;;
      esac
    else
      out+=$c
    fi
  done
  printf '%s' "$out"
}

parse_env_file() {
  local file=$1 line key value lineno=0
  local re_assign='^([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$'
  local re_double='^"((\\.|[^"\\])*)"[[:space:]]*(#.*)?$'
  local re_single="^'([^']*)'[[:space:]]*(#.*)?\$"
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    [[ -z $line || $line == \#* ]] && continue
    if [[ $line =~ ^export[[:space:]]+(.*)$ ]]; then
      line=${BASH_REMATCH[1]}
    fi
    [[ $line =~ $re_assign ]] || die "$file:$lineno: expected KEY=VALUE"
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    if [[ $value == \"* ]]; then
      [[ $value =~ $re_double ]] || die "$file:$lineno: unterminated double quote"
      value=$(unquote_double "${BASH_REMATCH[1]}")
    elif [[ $value == \'* ]]; then
      [[ $value =~ $re_single ]] || die "$file:$lineno: unterminated single quote"
      value=${BASH_REMATCH[1]}
    else
      value=${value%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
    fi
    ENV_VALUES[$key]=$value
  done <"$file"
}

env_has() { [[ -v ENV_VALUES[$1] ]]; }
env_get() { printf '%s' "${ENV_VALUES[$1]-}"; }

in_list() {
  local needle=$1 item
  shift
  for item in "$@"; do
    [[ $item == "$needle" ]] && return 0
  done
  return 1
}

# ---------------------------------------------------------------------------
# Options.

PROJECT=""
REGION="us-central1"
NAME="frontline"
ENV_FILE=".env"
MEMORY="512Mi"
CPU="1"
TIMEOUT="540s"
MIN_INSTANCES="0"
MAX_INSTANCES="20"
CONCURRENCY="8"
FIRESTORE_LOCATION=""
KEEP_SETTINGS=0
FIRST_RUN=1
DRY_RUN=0

need_value() {
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --dry-run) DRY_RUN=1 ;;
    --keep-settings) KEEP_SETTINGS=1 ;;
    --no-first-run) FIRST_RUN=0 ;;
    --project | --region | --name | --env-file | --memory | --cpu | --timeout | \
      --min-instances | --max-instances | --concurrency | --firestore-location)
      need_value "$@"
      case $1 in
        --project) PROJECT=$2 ;;
        --region) REGION=$2 ;;
        --name) NAME=$2 ;;
        --env-file) ENV_FILE=$2 ;;
        --memory) MEMORY=$2 ;;
        --cpu) CPU=$2 ;;
        --timeout) TIMEOUT=$2 ;;
        --min-instances) MIN_INSTANCES=$2 ;;
        --max-instances) MAX_INSTANCES=$2 ;;
        --concurrency) CONCURRENCY=$2 ;;
        --firestore-location) FIRESTORE_LOCATION=$2 ;;
      esac
      shift
      ;;
    --*=*)
      # --flag=value: split and handle as two arguments.
      flag=${1%%=*}
      value=${1#*=}
      shift
      set -- "$flag" "$value" "$@"
      continue
      ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done

if ((DRY_RUN)); then
  printf '# deploy.sh --dry-run: nothing is run. Commands that would run, one per line;\n'
  printf '# lines starting with # are notes. Values read back from Google Cloud are\n'
  printf '# placeholders: %s is the function URL.\n' "$URL_PLACEHOLDER"
fi

# The env file path is relative to where deploy.sh was started. A dry run without one shows
# the commands for .env.example's placeholder values.
if ((DRY_RUN)) && [[ ! -f $ENV_FILE && $ENV_FILE == .env && -f .env.example ]]; then
  printf '# no .env: using .env.example to show the commands\n'
  ENV_FILE=.env.example
fi
[[ -f $ENV_FILE ]] || die "env file not found: $ENV_FILE (copy .env.example to .env, or pass --env-file)"
parse_env_file "$ENV_FILE"

[[ -n $PROJECT ]] || PROJECT=$(env_get GOOGLE_CLOUD_PROJECT)
[[ -n $PROJECT ]] || die "no project: pass --project or set GOOGLE_CLOUD_PROJECT in $ENV_FILE"
[[ $PROJECT =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "not a project id: $PROJECT"
[[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "not a region: $REGION"
[[ $NAME =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
  die "not a function name (lowercase letters, digits, hyphens): $NAME"
[[ $TIMEOUT =~ ^([0-9]+)s?$ ]] || die "--timeout takes seconds, e.g. 540s"
TIMEOUT_SECONDS=${BASH_REMATCH[1]}
((TIMEOUT_SECONDS >= 1 && TIMEOUT_SECONDS <= 3600)) || die "--timeout must be 1s to 3600s"
TIMEOUT="${TIMEOUT_SECONDS}s"
for pair in "min-instances:$MIN_INSTANCES" "max-instances:$MAX_INSTANCES" "concurrency:$CONCURRENCY"; do
  [[ ${pair#*:} =~ ^[0-9]+$ ]] || die "--${pair%%:*} takes a whole number"
done
[[ -n $FIRESTORE_LOCATION ]] || FIRESTORE_LOCATION=$REGION

# A refresh task stops itself after TASK_BUDGET_SECONDS (default 480s) to answer
# before the function's timeout; keep that budget a minute under the timeout.
budget=$(env_get TASK_BUDGET_SECONDS)
if [[ -z $budget ]] && ((TIMEOUT_SECONDS - 60 < 480)); then
  budget=$((TIMEOUT_SECONDS - 60 > 10 ? TIMEOUT_SECONDS - 60 : 10))
  ENV_VALUES[TASK_BUDGET_SECONDS]=$budget
  info "TASK_BUDGET_SECONDS=$budget (a minute under --timeout $TIMEOUT)"
elif [[ $budget =~ ^[0-9]+$ ]] && ((budget >= TIMEOUT_SECONDS)); then
  warn "TASK_BUDGET_SECONDS=$budget is not below --timeout $TIMEOUT: a long refresh will be cut off"
fi

# The scheduler waits a little longer than the function may run (Cloud Scheduler
# allows 15s to 30 minutes for HTTP targets).
ATTEMPT_SECONDS=$((TIMEOUT_SECONDS + 60))
((ATTEMPT_SECONDS <= 1800)) || ATTEMPT_SECONDS=1800
ATTEMPT_DEADLINE="${ATTEMPT_SECONDS}s"

# Service account ids are 6-30 characters.
sa_id() {
  local suffix=$1 prefix=$NAME
  prefix=${prefix:0:$((30 - ${#suffix}))}
  prefix=${prefix%-}
  printf '%s%s' "$prefix" "$suffix"
}
RUNTIME_SA="$(sa_id -runtime)@${PROJECT}.iam.gserviceaccount.com"
SCHEDULER_SA="$(sa_id -scheduler)@${PROJECT}.iam.gserviceaccount.com"
JOB="${NAME}-refresh"
DATABASE=$(env_get FIRESTORE_DATABASE)
[[ -n $DATABASE ]] || DATABASE="(default)"

# Aliases from the Node quickstart's .env.
if ! env_has TWILIO_ACCOUNT_SID && env_has ACCOUNT_SID; then
  ENV_VALUES[TWILIO_ACCOUNT_SID]=$(env_get ACCOUNT_SID)
fi
if [[ -z $(env_get TWILIO_AUTH_TOKEN) && -n $(env_get AUTH_TOKEN) ]]; then
  ENV_VALUES[TWILIO_AUTH_TOKEN]=$(env_get AUTH_TOKEN)
fi

# Check the env file's keys before anything runs.
for key in "${!ENV_VALUES[@]}"; do
  case $key in
    ACCOUNT_SID | AUTH_TOKEN | TWILIO_AUTH_TOKEN | AIRTABLE_API_KEY | REFRESH_TOKEN) ;;
    TWILIO_AUTH_TOKEN_SECRET | AIRTABLE_API_KEY_SECRET | REFRESH_TOKEN_SECRET) ;;
    *)
      if in_list "$key" "${PASSED_SETTINGS[@]}" || in_list "$key" "${COMPUTED_SETTINGS[@]}"; then
        :
      elif in_list "$key" "${LOCAL_ONLY_SETTINGS[@]}" || [[ $key == X_GOOGLE_* ]]; then
        warn "$key is for local runs only; not deployed"
      else
        warn "$key is not a setting of this service; not deployed"
      fi
      ;;
  esac
done
case ${ENV_VALUES[TWILIO_SIGNATURE_VALIDATION]-} in
  [Ff]alse | FALSE | 0 | [Nn]o | [Oo]ff)
    warn "TWILIO_SIGNATURE_VALIDATION=false is refused on Google Cloud; not deployed"
    unset 'ENV_VALUES[TWILIO_SIGNATURE_VALIDATION]'
    ;;
esac
if ((!KEEP_SETTINGS)); then
  for key in TWILIO_ACCOUNT_SID AIRTABLE_BASE_ID; do
    [[ -n $(env_get "$key") ]] || die "$key is missing from $ENV_FILE"
  done
fi

if ((!DRY_RUN)); then
  command -v gcloud >/dev/null || die "gcloud is not installed (https://cloud.google.com/sdk/docs/install)"
  export CLOUDSDK_CORE_DISABLE_PROMPTS=1
fi

# deploy.sh deploys the directory it lives in.
cd "$(dirname "${BASH_SOURCE[0]}")"
WORK_DIR=$(mktemp -d)
trap 'rm -rf "$WORK_DIR"' EXIT

P="--project=$PROJECT"

# ---------------------------------------------------------------------------
info "APIs"
missing_apis=()
if ((DRY_RUN)); then
  query gcloud services list --enabled "$P" '--format=value(config.name)' || true
  missing_apis=("${APIS[@]}")
else
  enabled=$(gcloud services list --enabled "$P" '--format=value(config.name)') ||
    die "could not list the enabled APIs of $PROJECT (is it the right project, and are you logged in?)"
  for api in "${APIS[@]}"; do
    grep -Fxq "$api" <<<"$enabled" || missing_apis+=("$api")
  done
fi
if ((${#missing_apis[@]})); then
  note "if any is not enabled yet:"
  run gcloud services enable "${missing_apis[@]}" "$P"
fi

# ---------------------------------------------------------------------------
info "Firestore database $DATABASE (Native mode)"
if query gcloud firestore databases describe "--database=$DATABASE" "$P" '--format=value(type)'; then
  [[ $QUERY_OUT == FIRESTORE_NATIVE ]] ||
    die "Firestore database $DATABASE is in $QUERY_OUT mode; this service needs Native mode"
else
  note "if missing:"
  run gcloud firestore databases create "--database=$DATABASE" "--location=$FIRESTORE_LOCATION" \
    --type=firestore-native "$P"
fi

# ---------------------------------------------------------------------------
info "service accounts"
ensure_service_account() {
  local email=$1 display=$2
  if ! query gcloud iam service-accounts describe "$email" "$P" '--format=value(email)'; then
    note "if missing:"
    run gcloud iam service-accounts create "${email%%@*}" "--display-name=$display" "$P"
  fi
}
ensure_service_account "$RUNTIME_SA" "$NAME function (runtime)"
ensure_service_account "$SCHEDULER_SA" "$NAME refresh job (Cloud Scheduler)"

info "runtime service account: Firestore access"
if ! has_binding roles/datastore.user "serviceAccount:$RUNTIME_SA" \
  gcloud projects get-iam-policy "$PROJECT"; then
  note "if the binding is missing:"
  run_retrying gcloud projects add-iam-policy-binding "$PROJECT" \
    "--member=serviceAccount:$RUNTIME_SA" --role=roles/datastore.user --condition=None
fi

# ---------------------------------------------------------------------------
# Secrets. Each ends up as a *_SECRET setting that names it.
declare -A SECRET_SETTINGS=()

ensure_secret_value() {
  local id=$1 value=$2
  if ! query gcloud secrets describe "$id" "$P" '--format=value(name)'; then
    note "if missing:"
    run gcloud secrets create "$id" --replication-policy=automatic "$P"
    if ((DRY_RUN)); then
      note "if it exists, its latest version is read into memory (never printed) and a"
      note "version is added only when it differs from $ENV_FILE or cannot be read:"
      printf '%s\n' "$(quote_cmd gcloud secrets versions access latest "--secret=$id" "$P")"
    fi
    run_with_secret "$value" gcloud secrets versions add "$id" --data-file=- "$P"
    return 0
  fi
  # Compare with the latest version in memory only; add a version when it differs
  # or cannot be read.
  local current=""
  if current=$(gcloud secrets versions access latest "--secret=$id" "$P" 2>/dev/null) &&
    [[ $current == "$value" ]]; then
    info "secret $id is up to date"
    return 0
  fi
  run_with_secret "$value" gcloud secrets versions add "$id" --data-file=- "$P"
}

ensure_secret_access() {
  local id=$1 project=$2
  if ! has_binding roles/secretmanager.secretAccessor "serviceAccount:$RUNTIME_SA" \
    gcloud secrets get-iam-policy "$id" "--project=$project"; then
    note "if the binding is missing:"
    run_retrying gcloud secrets add-iam-policy-binding "$id" "--project=$project" \
      "--member=serviceAccount:$RUNTIME_SA" --role=roles/secretmanager.secretAccessor \
      --condition=None
  fi
}

# Settings of the deployed function (for --keep-settings).
declare -A DEPLOYED=()
FUNCTION_EXISTS=0
FUNCTION_URL=""
read_function() {
  if query gcloud functions describe "$NAME" "--region=$REGION" "$P" '--format=value(url,serviceConfig.uri)'; then
    FUNCTION_EXISTS=1
    FUNCTION_URL=${QUERY_OUT%%$'\t'*}
    [[ -n $FUNCTION_URL ]] || FUNCTION_URL=${QUERY_OUT#*$'\t'}
  fi
}

info "function $NAME in $REGION"
read_function
if ((KEEP_SETTINGS)); then
  info "settings of the deployed function are kept; the env file's values override them"
  if ((DRY_RUN)); then
    query gcloud functions describe "$NAME" "--region=$REGION" "$P" \
      '--format=value[delimiter="\n"](serviceConfig.environmentVariables)' || true
  elif ((FUNCTION_EXISTS)); then
    query gcloud functions describe "$NAME" "--region=$REGION" "$P" \
      '--format=value[delimiter="\n"](serviceConfig.environmentVariables)' || true
    while IFS= read -r line; do
      [[ $line == *=* ]] || continue
      DEPLOYED[${line%%=*}]=${line#*=}
    done <<<"$QUERY_OUT"
  fi
  if ((!FUNCTION_EXISTS && !DRY_RUN)); then
    for key in TWILIO_ACCOUNT_SID AIRTABLE_BASE_ID; do
      [[ -n $(env_get "$key") ]] || die "$key is missing from $ENV_FILE (the function is not deployed yet)"
    done
  fi
fi

for spec in "${SECRET_SPECS[@]}"; do
  IFS='|' read -r value_key name_key suffix required <<<"$spec"
  value=$(env_get "$value_key")
  secret_ref=$(env_get "$name_key")
  [[ -n $secret_ref ]] || secret_ref=${DEPLOYED[$name_key]-}
  [[ -n $secret_ref ]] || secret_ref="${NAME}-${suffix}"
  # A full resource name may point at another project.
  secret_id=$secret_ref
  secret_project=$PROJECT
  if [[ $secret_ref =~ ^projects/([^/]+)/secrets/([^/]+) ]]; then
    secret_project=${BASH_REMATCH[1]}
    secret_id=${BASH_REMATCH[2]}
  fi
  info "secret for $value_key: $secret_ref"
  if [[ -n $value ]]; then
    [[ $secret_project == "$PROJECT" ]] ||
      die "$name_key names a secret in another project; deploy.sh only writes secrets in $PROJECT"
    ensure_secret_value "$secret_id" "$value"
  elif query gcloud secrets describe "$secret_id" "--project=$secret_project" '--format=value(name)'; then
    :
  elif ((DRY_RUN)); then
    if [[ $required == required ]]; then
      info "no $value_key in $ENV_FILE: secret $secret_id must already exist"
    else
      info "no $value_key in $ENV_FILE: $name_key is set only if secret $secret_id exists"
      continue
    fi
  elif [[ $required == required ]]; then
    die "no $value_key in $ENV_FILE and secret $secret_id does not exist in $secret_project"
  else
    continue
  fi
  ensure_secret_access "$secret_id" "$secret_project"
  SECRET_SETTINGS[$name_key]=$secret_ref
done

# ---------------------------------------------------------------------------
# The function's settings, written to a YAML file for --env-vars-file (values
# with commas or quotes survive; no secret value is ever written to it).
yaml_quote() { printf "'%s'" "${1//\'/\'\'}"; }

write_settings() {
  local url=$1 file=$2 key
  declare -A final=()
  if ((KEEP_SETTINGS)); then
    for key in "${!DEPLOYED[@]}"; do
      final[$key]=${DEPLOYED[$key]}
    done
  fi
  for key in "${PASSED_SETTINGS[@]}"; do
    if env_has "$key"; then
      if [[ -n $(env_get "$key") ]]; then
        final[$key]=$(env_get "$key")
      else
        unset 'final[$key]'
      fi
    fi
  done
  for key in "${LOCAL_ONLY_SETTINGS[@]}" TWILIO_AUTH_TOKEN AUTH_TOKEN ACCOUNT_SID AIRTABLE_API_KEY REFRESH_TOKEN; do
    unset 'final[$key]'
  done
  for key in "${!SECRET_SETTINGS[@]}"; do
    final[$key]=${SECRET_SETTINGS[$key]}
  done
  final[GOOGLE_CLOUD_PROJECT]=$PROJECT
  final[PUBLIC_BASE_URL]=$url
  final[SCHEDULER_SERVICE_ACCOUNT]=$SCHEDULER_SA
  : >"$file"
  chmod 600 "$file"
  while IFS= read -r key; do
    printf '%s: %s\n' "$key" "$(yaml_quote "${final[$key]}")" >>"$file"
  done < <(printf '%s\n' "${!final[@]}" | LC_ALL=C sort)
}

deploy_function() {
  local url=$1 file="$WORK_DIR/env.yaml"
  write_settings "$url" "$file"
  local given
  given=$(env_get PUBLIC_BASE_URL)
  if [[ -n $given && $given != "$url" && ! $given =~ ^http://(localhost|127\.0\.0\.1)([:/]|$) ]]; then
    warn "PUBLIC_BASE_URL in $ENV_FILE is replaced by the function URL $url"
  fi
  if ((DRY_RUN)); then
    info "settings passed with --env-vars-file ($file):"
    sed 's/^/#   /' "$file"
  fi
  run gcloud functions deploy "$NAME" --gen2 "--runtime=$RUNTIME" "--region=$REGION" "$P" \
    --source=. "--entry-point=$ENTRY_POINT" --trigger-http --allow-unauthenticated \
    "--service-account=$RUNTIME_SA" "--memory=$MEMORY" "--cpu=$CPU" "--timeout=$TIMEOUT" \
    "--min-instances=$MIN_INSTANCES" "--max-instances=$MAX_INSTANCES" \
    "--concurrency=$CONCURRENCY" "--env-vars-file=$file" --serve-all-traffic-latest-revision
}

info "deploy (Twilio cannot send Google credentials: the callbacks are public and"
info "every request is checked against its Twilio signature)"
if ((DRY_RUN)); then
  FUNCTION_URL=$URL_PLACEHOLDER
  deploy_function "$FUNCTION_URL"
elif ((FUNCTION_EXISTS)); then
  deploy_function "$FUNCTION_URL"
else
  # First deploy: a 2nd gen function's URL is known in advance; read it back to be sure.
  predicted="https://${REGION}-${PROJECT}.cloudfunctions.net/${NAME}"
  deploy_function "$predicted"
  read_function
  [[ -n $FUNCTION_URL ]] || die "deployed, but could not read the function URL"
  if [[ $FUNCTION_URL != "$predicted" ]]; then
    info "the function URL is $FUNCTION_URL: deploying again so PUBLIC_BASE_URL matches it"
    deploy_function "$FUNCTION_URL"
  fi
fi
REFRESH_URL="$FUNCTION_URL/tasks/refresh"

# ---------------------------------------------------------------------------
info "scheduler service account: allowed to invoke the function"
if ! has_binding roles/run.invoker "serviceAccount:$SCHEDULER_SA" \
  gcloud run services get-iam-policy "$NAME" "--region=$REGION" "$P"; then
  note "if the binding is missing:"
  run_retrying gcloud functions add-invoker-policy-binding "$NAME" "--region=$REGION" "$P" \
    "--member=serviceAccount:$SCHEDULER_SA"
fi

info "scheduler job $JOB: POST $REFRESH_URL every minute with an OIDC token"
JOB_FLAGS=(
  "--location=$REGION" "$P" "--schedule=* * * * *" --time-zone=Etc/UTC
  "--uri=$REFRESH_URL" --http-method=POST
  "--oidc-service-account-email=$SCHEDULER_SA" "--oidc-token-audience=$REFRESH_URL"
  "--attempt-deadline=$ATTEMPT_DEADLINE"
  "--description=Refreshes the $NAME contact cache (incremental refresh or resumable full sync)"
)
if query gcloud scheduler jobs describe "$JOB" "--location=$REGION" "$P" \
  '--format=value(schedule,httpTarget.uri,httpTarget.oidcToken.serviceAccountEmail,httpTarget.oidcToken.audience,attemptDeadline,state)'; then
  IFS=$'\t' read -r cur_schedule cur_uri cur_sa cur_aud cur_deadline cur_state <<<"$QUERY_OUT"
  if [[ $cur_schedule == "* * * * *" && $cur_uri == "$REFRESH_URL" && $cur_sa == "$SCHEDULER_SA" &&
    $cur_aud == "$REFRESH_URL" && $cur_deadline == "$ATTEMPT_DEADLINE" ]]; then
    info "scheduler job $JOB is up to date"
  else
    run gcloud scheduler jobs update http "$JOB" "${JOB_FLAGS[@]}"
  fi
  [[ $cur_state != PAUSED ]] ||
    warn "scheduler job $JOB is paused: resume it with gcloud scheduler jobs resume $JOB --location=$REGION $P"
else
  note "if missing (otherwise: gcloud scheduler jobs update http with the same flags):"
  run gcloud scheduler jobs create http "$JOB" "${JOB_FLAGS[@]}"
fi
if ((FIRST_RUN)); then
  info "run the job once now: starts (or continues) the first full sync"
  run gcloud scheduler jobs run "$JOB" "--location=$REGION" "$P"
fi

# ---------------------------------------------------------------------------
print_console_settings() {
  local u=$1
  cat <<EOF
Twilio console settings for $u
  Frontline > Manage > Callbacks
    CRM callback URL:                     $u/callbacks/crm
    Outgoing conversations callback URL:  $u/callbacks/outgoing-conversation
    Templates callback URL:               $u/callbacks/templates
  Frontline > Manage > Routing
    Custom routing callback URL:          $u/callbacks/routing
  Conversations > Services > (the Frontline service) > Webhooks
    Pre-event URL:                        $u/callbacks/twilio-conversations
      pre-webhooks to tick:               onConversationAdd, onMessageAdd
    Post-event URL:                       $u/callbacks/twilio-conversations
      post-webhooks to tick:              onParticipantAdded, onMessageAdded
Health check: GET $u/healthz
EOF
}

if ((DRY_RUN)); then
  print_console_settings "$FUNCTION_URL" | sed 's/^/# /'
else
  printf '\n'
  print_console_settings "$FUNCTION_URL"
fi
