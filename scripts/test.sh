#!/usr/bin/env bash
# Runs every check and test nphooks has, on a fresh machine:
#   1. installs the Python stand-ins for AWS (moto server) into ./.venv,
#   2. starts a moto server on a free loopback port and points the real AWS SDK
#      clients at it through AWS_ENDPOINT_URL,
#   3. runs rustfmt --check, clippy with warnings denied, and all tests,
#   4. stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${NPHOOKS_VENV:-$PWD/.venv}"
PY_PACKAGES=("moto[server]==5.2.5")

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
log "moto server on 127.0.0.1:$MOTO_PORT (log: $MOTO_LOG)"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/')" 2>/dev/null; then
    break
  fi
  kill -0 "$MOTO_PID" 2>/dev/null || { cat "$MOTO_LOG"; echo "moto server did not start" >&2; exit 1; }
  sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test"
cargo test --workspace --all-targets --locked
