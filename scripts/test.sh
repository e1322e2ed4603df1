#!/usr/bin/env bash
# Runs every check and test nphooks has, on a fresh machine:
#   1. installs the Python stand-ins (moto server for AWS, aiosmtpd for SMTP) into ./.venv,
#   2. starts a moto server on a free loopback port and points the real AWS SDK
#      clients at it through AWS_ENDPOINT_URL, and a real SMTP server (aiosmtpd,
#      scripts/smtp_server.py) on another,
#   3. runs rustfmt --check, clippy with warnings denied, and all tests,
#   4. holds every AWS call each function made in those tests against the IAM role
#      `sam deploy` generates for it (scripts/iam: moto's request recorder, the SAM
#      transform; see README "What runs"), after the checker's own unit tests,
#   5. stops the servers, then lints template.yaml and runs `sam build` for every
#      function (scripts/sam-build.sh; NPHOOKS_SKIP_SAM_BUILD=1 skips it locally).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${NPHOOKS_VENV:-$PWD/.venv}"
PY_PACKAGES=("moto[server]==5.2.5" "aiosmtpd==1.4.6" "aws-sam-translator==1.110.0")

log() { printf '\n== %s\n' "$*"; }

log "python stand-ins (${PY_PACKAGES[*]}) in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

MOTO_PORT=$(free_port)
MOTO_LOG=$(mktemp -t moto.XXXXXX.log)
MOTO_RECORDING=$(mktemp -t moto-recording.XXXXXX.jsonl)
log "moto server on 127.0.0.1:$MOTO_PORT, recording every request (log: $MOTO_LOG, recording: $MOTO_RECORDING)"
"$VENV/bin/python" scripts/iam/moto_recording_server.py "$MOTO_RECORDING" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
PIDS=("$MOTO_PID")
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "${MAILDIR:-}" "${MOTO_RECORDING:-}" "${NPHOOKS_TEST_LOG_DIR:-}"
}
trap cleanup EXIT

wait_for_port() { # name pid port log
  for _ in $(seq 1 150); do
    if "$VENV/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $3), 0.5).close()" 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || { cat "$4"; echo "$1 did not start" >&2; exit 1; }
    sleep 0.2
  done
  cat "$4"; echo "$1 did not open port $3" >&2; exit 1
}
wait_for_port "moto server" "$MOTO_PID" "$MOTO_PORT" "$MOTO_LOG"

SMTP_PORT=$(free_port)
MAILDIR=$(mktemp -d -t nphooks-maildir.XXXXXX)
SMTP_LOG=$(mktemp -t smtp.XXXXXX.log)
log "SMTP server (aiosmtpd) on 127.0.0.1:$SMTP_PORT, storing mail in $MAILDIR"
"$VENV/bin/python" scripts/smtp_server.py --port "$SMTP_PORT" --maildir "$MAILDIR" >"$SMTP_LOG" 2>&1 &
PIDS+=($!)
wait_for_port "SMTP server" "$!" "$SMTP_PORT" "$SMTP_LOG"

# Every test process appends nphooks' own log lines here, for the leak scan.
export NPHOOKS_TEST_LOG_DIR; NPHOOKS_TEST_LOG_DIR=$(mktemp -d -t nphooks-test-logs.XXXXXX)
export NPHOOKS_TEST_SMTP_PORT="$SMTP_PORT" NPHOOKS_TEST_MAILDIR="$MAILDIR" NPHOOKS_TEST_PYTHON="$VENV/bin/python"

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test"
cargo test --workspace --all-targets --locked

log "IAM check: the checker's unit tests, then every recorded call against its function's role"
"$VENV/bin/python" -m unittest discover -s scripts/iam
"$VENV/bin/python" scripts/iam/check_iam.py --template template.yaml --recording "$MOTO_RECORDING"

log "leak scan: no caller data in any log line, queue message attribute or table value of the suite"
"$VENV/bin/python" -m unittest discover -s scripts -p 'test_leak_scan.py'
"$VENV/bin/python" scripts/leak_scan.py --recording "$MOTO_RECORDING" --logs "$NPHOOKS_TEST_LOG_DIR"

if [ "${NPHOOKS_SKIP_SAM_BUILD:-0}" = 1 ]; then
  log "template lint and sam build skipped (NPHOOKS_SKIP_SAM_BUILD=1)"
else
  scripts/sam-build.sh
fi
