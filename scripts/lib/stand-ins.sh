# Sourced by scripts/test.sh and scripts/test-runner.sh: the Python stand-ins the tests
# talk to — a moto server for SQS, DynamoDB, SES and Secrets Manager, and a real SMTP
# server (aiosmtpd) — installed into one virtualenv and started on free loopback ports.
# Callers set `set -euo pipefail` and call stand_ins_stop on exit.

STAND_INS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${NPHOOKS_VENV:-$STAND_INS_ROOT/.venv}"
PY_PACKAGES=("moto[server]==5.2.5" "aiosmtpd==1.4.6" "aws-sam-translator==1.110.0")
STAND_IN_PIDS=()

# Creates $VENV and installs the pinned packages once; concurrent callers wait.
stand_ins_install() {
  mkdir -p "$(dirname "$VENV")"
  (
    flock 9
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    local stamp="$VENV/.nphooks-packages"
    if [ "$(cat "$stamp" 2>/dev/null)" != "${PY_PACKAGES[*]}" ]; then
      "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
      echo "${PY_PACKAGES[*]}" >"$stamp"
    fi
  ) 9>"$VENV.lock"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # name pid port log
  for _ in $(seq 1 150); do
    if "$VENV/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $3), 0.5).close()" 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || { cat "$4" >&2; echo "$1 did not start" >&2; exit 1; }
    sleep 0.2
  done
  cat "$4" >&2; echo "$1 did not open port $3" >&2; exit 1
}

# Starts moto (recording every request to $1 when given) and exports AWS_ENDPOINT_URL
# with dummy credentials, so the real AWS SDK clients talk to it.
stand_ins_start_moto() { # [recording-file]
  MOTO_PORT=$(free_port)
  MOTO_LOG=$(mktemp -t moto.XXXXXX.log)
  # scripts/lib/moto_server.py: moto_server, its data-plane calls taken in turn as AWS does.
  "$VENV/bin/python" "$STAND_INS_ROOT/scripts/lib/moto_server.py" ${1:+--record "$1"} \
    -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
  STAND_IN_PIDS+=("$!")
  wait_for_port "moto server" "$!" "$MOTO_PORT" "$MOTO_LOG"
  # moto loads each service's backend on its first request (seconds on a busy machine):
  # load the three the receiver and processors call now, so no test's first call pays for it.
  "$VENV/bin/python" - "$MOTO_PORT" <<'PY'
import sys, urllib.error, urllib.request
port = sys.argv[1]
for service, target in [("dynamodb", "DynamoDB_20120810.ListTables"), ("sqs", "AmazonSQS.ListQueues"),
                        ("secretsmanager", "secretsmanager.ListSecrets")]:
    auth = f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}", method="POST", headers={
        "Authorization": auth, "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"})
    try:
        urllib.request.urlopen(request, timeout=60).read()
    except urllib.error.HTTPError as answer:  # warm-up only: any answer will do
        print(f"moto warm-up: {service} answered {answer.code}", file=sys.stderr)
PY
  export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

# Starts the SMTP server and exports what the email tests read.
stand_ins_start_smtp() {
  SMTP_PORT=$(free_port)
  MAILDIR=$(mktemp -d -t nphooks-maildir.XXXXXX)
  SMTP_LOG=$(mktemp -t smtp.XXXXXX.log)
  "$VENV/bin/python" "$STAND_INS_ROOT/scripts/smtp_server.py" --port "$SMTP_PORT" --maildir "$MAILDIR" >"$SMTP_LOG" 2>&1 &
  STAND_IN_PIDS+=("$!")
  wait_for_port "SMTP server" "$!" "$SMTP_PORT" "$SMTP_LOG"
  export NPHOOKS_TEST_SMTP_PORT="$SMTP_PORT" NPHOOKS_TEST_MAILDIR="$MAILDIR" NPHOOKS_TEST_PYTHON="$VENV/bin/python"
}

stand_ins_stop() {
  for pid in "${STAND_IN_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "${MAILDIR:-}" "${MOTO_LOG:-}" "${SMTP_LOG:-}"
}

# The Debian packages the suite needs, installed once (we run as root on a fresh CI
# machine): headless Chromium and its WebDriver (`chromium`, `chromium-driver`) for the
# dashboard's browser test (crates/nphooks-cli/tests/browser.rs), and libfaketime
# (`faketime`) for the clock guard (scripts/test-runner.sh, NPHOOKS_CLOCK_AHEAD). Then
# NPHOOKS_CHROMEDRIVER and NPHOOKS_CHROMIUM are exported for the browser test.
stand_ins_install_debian() {
  if ! command -v chromedriver >/dev/null 2>&1 || ! command -v faketime >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver faketime >/dev/null
  fi
  NPHOOKS_CHROMEDRIVER=$(command -v chromedriver)
  # (a chromedriver installed otherwise finds its own browser when this is empty)
  NPHOOKS_CHROMIUM=$(command -v chromium || true)
  export NPHOOKS_CHROMEDRIVER NPHOOKS_CHROMIUM
}
