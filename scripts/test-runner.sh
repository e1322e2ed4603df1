#!/usr/bin/env bash
# Cargo's runner for this workspace (.cargo/config.toml), so plain `cargo test` works on a
# fresh clone: a test binary started without AWS_ENDPOINT_URL gets its own moto server
# and SMTP server (scripts/lib/stand-ins.sh; the first run installs them into ./.venv,
# which needs python3 and the network once). Anything else — `cargo run`, or tests under
# scripts/test.sh, which starts the servers itself — runs unchanged.
#
# NPHOOKS_CLOCK_AHEAD (a libfaketime offset such as +365d; scripts/test.sh's clock guard):
# each test binary runs with its wall clock (and its children's) moved ahead by that
# much; monotonic time is left alone, so timeouts and timers keep their lengths.
set -euo pipefail
case "$1" in
  */deps/*) ;;     # a test binary
  *) exec "$@" ;;
esac
if [ -n "${NPHOOKS_CLOCK_AHEAD:-}" ]; then
  command -v faketime >/dev/null || { echo "NPHOOKS_CLOCK_AHEAD is set, but faketime is not installed (Debian package faketime)" >&2; exit 1; }
  export FAKETIME_DONT_FAKE_MONOTONIC=1
  set -- faketime -f "$NPHOOKS_CLOCK_AHEAD" "$@"
fi
[ -z "${AWS_ENDPOINT_URL:-}" ] || exec "$@"
source "$(dirname "$0")/lib/stand-ins.sh"
trap stand_ins_stop EXIT
stand_ins_install >&2 || {
  echo "could not install the test stand-ins (moto, aiosmtpd) into $VENV: run scripts/test.sh, or start a moto server and export AWS_ENDPOINT_URL" >&2
  exit 1
}
stand_ins_start_moto
stand_ins_start_smtp
status=0
"$@" || status=$?
exit "$status"
