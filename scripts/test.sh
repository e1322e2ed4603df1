#!/usr/bin/env bash
# Runs every check and test nphooks has, on a fresh machine:
#   1. installs the Python stand-ins (moto server for AWS, aiosmtpd for SMTP) into ./.venv,
#   2. starts a moto server on a free loopback port and points the real AWS SDK
#      clients at it through AWS_ENDPOINT_URL, and a real SMTP server (aiosmtpd,
#      scripts/smtp_server.py) on another,
#   3. runs rustfmt --check, builds every test with clippy's lints (warnings denied), runs them,
#      then runs them again with the clock a year ahead (the clock guard, libfaketime),
#   4. holds every AWS call each function made in those tests against the IAM role
#      `sam deploy` generates for it (scripts/iam: moto's request recorder, the SAM
#      transform; see README "What runs"), after the checker's own unit tests,
#   5. lints template.yaml and runs `sam build` for every function (scripts/sam-build.sh;
#      the functions compile from the start at the lowest CPU priority, on whatever the
#      tests' build and run leave idle; NPHOOKS_SKIP_SAM_BUILD=1 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/stand-ins.sh   # VENV, PY_PACKAGES, stand_ins_* (also used by scripts/test-runner.sh)

log() { printf '\n== [+%ss] %s\n' "$SECONDS" "$*"; }

if [ "${NPHOOKS_SKIP_SAM_BUILD:-0}" != 1 ]; then
  # The SAM tools (and the arm64 target) download, then the release arm64 build of every
  # function runs at the lowest priority: it shares nothing with the tests' build (another
  # profile and target, so no lock), and takes the cores the tests leave idle — while
  # they compile one big crate on one core, while they wait on moto — for the whole run.
  SAM_COMPILE_LOG=$(mktemp -t sam-compile.XXXXXX.log)
  setsid nice -n 19 scripts/sam-build.sh --install-and-compile >"$SAM_COMPILE_LOG" 2>&1 &
  SAM_COMPILE_PID=$!
fi

# Chromium and chromedriver for the dashboard's browser test, and faketime for the clock
# guard (apt, ~40 s on a fresh machine), install while the Python stand-ins install and
# the tests build.
DEBIAN_INSTALL_LOG=$(mktemp -t debian-install.XXXXXX.log)
( stand_ins_install_debian ) >"$DEBIAN_INSTALL_LOG" 2>&1 &
DEBIAN_INSTALL_PID=$!

log "python stand-ins (${PY_PACKAGES[*]}) in $VENV"
stand_ins_install

MOTO_RECORDING=$(mktemp -t moto-recording.XXXXXX.jsonl)
cleanup() {
  # A build still running (the tests failed first) goes with us: it has its own group.
  [ -z "${SAM_COMPILE_PID:-}" ] || kill -- "-$SAM_COMPILE_PID" 2>/dev/null || true
  stand_ins_stop
  rm -rf "${MOTO_RECORDING:-}" "${MOTO_RECORDING_AHEAD:-}" "${NPHOOKS_TEST_LOG_DIR:-}" "${SAM_COMPILE_LOG:-}" "${DEBIAN_INSTALL_LOG:-}"
}
trap cleanup EXIT
stand_ins_start_moto "$MOTO_RECORDING"
log "moto server on $AWS_ENDPOINT_URL, recording every request (log: $MOTO_LOG, recording: $MOTO_RECORDING)"
stand_ins_start_smtp
log "SMTP server (aiosmtpd) on 127.0.0.1:$SMTP_PORT, storing mail in $MAILDIR"

# Every test process appends nphooks' own log lines here, for the leak scan.
export NPHOOKS_TEST_LOG_DIR; NPHOOKS_TEST_LOG_DIR=$(mktemp -d -t nphooks-test-logs.XXXXXX)

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo test: build, linted by clippy as it compiles (warnings denied)"
# The same lints as `cargo clippy --workspace --all-targets -- -D warnings`, in one pass:
# clippy's driver compiles the workspace's own crates (cargo's wrapper for them only), so
# the dependencies are compiled once, not checked for clippy and then built for the tests.
# Every later cargo command here keeps the two variables, so nothing is rebuilt.
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"  # clippy-driver's own format
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
cargo test --workspace --all-targets --locked --no-run

wait "$DEBIAN_INSTALL_PID" || { cat "$DEBIAN_INSTALL_LOG"; echo "installing chromium, chromium-driver and faketime failed" >&2; exit 1; }
stand_ins_install_debian   # installed: exports NPHOOKS_CHROMEDRIVER and NPHOOKS_CHROMIUM
export NPHOOKS_REQUIRE_BROWSER=1   # the dashboard's browser test fails, never skips, without them
log "headless Chromium for the browser test: $NPHOOKS_CHROMIUM, $NPHOOKS_CHROMEDRIVER"

log "cargo test: run"
# The 100k-delivery chaos soak runs on its own, so that its summary line shows here.
SOAK_100K=given_100k_deliveries_at_5_percent_faults_and_crashes_then_none_is_lost_or_doubled
# ... and so does the moto soak (2,000 deliveries on the real adapters behind the fault proxy).
SOAK_MOTO=given_2000_deliveries_on_moto_with_aws_faults_and_crashes_then_none_is_lost_or_doubled
# (criterion benches take no --skip: they run in test mode on their own)
cargo test --workspace --lib --bins --tests --examples --locked -- --skip "$SOAK_100K" --skip "$SOAK_MOTO"
cargo test --workspace --benches --locked
log "clock guard: the same tests with every test binary's wall clock a year ahead (libfaketime)"
# No test may depend on the day it runs (DESIGN.md, invariant 10): every one passed above,
# so any failure here is an outcome the date changed. scripts/test-runner.sh runs each test
# binary under `faketime -f "$NPHOOKS_CLOCK_AHEAD"`; the binaries they start inherit it
# (nphooks_testkit::child_clock); the moto and SMTP servers started above keep the real
# clock, as AWS's would. The two soaks run on virtual clocks from a fixed start.
# A moto of its own (the dashboard's tests name their tables and queues as a stack does, so
# the first run's would still be there); what it records is held against IAM too.
MOTO_RECORDING_AHEAD=$(mktemp -t moto-recording-ahead.XXXXXX.jsonl)
stand_ins_start_moto "$MOTO_RECORDING_AHEAD"
NPHOOKS_CLOCK_AHEAD=+365d cargo test --workspace --lib --bins --tests --examples --locked -- --skip "$SOAK_100K" --skip "$SOAK_MOTO"
cat "$MOTO_RECORDING_AHEAD" >>"$MOTO_RECORDING"
log "chaos soak: 100,000 deliveries at 5 % faults plus crashes (crates/nphooks-testkit/tests/soak.rs)"
# (--workspace, not -p: the same features as the build above, so nothing is rebuilt;
# without the receiver's EMF metric lines, a few thousand of them)
cargo test --workspace --test soak --locked -- --exact "$SOAK_100K" --nocapture 2>&1 | grep -v '"_aws":'
log "chaos soak on moto: 2,000 deliveries, AWS faults at the HTTP level, crashes (crates/nphooks-testkit/tests/soak_moto.rs)"
# On a moto of its own (the test runner starts one when AWS_ENDPOINT_URL is unset): moto
# takes calls in turn, and one without the suite's recording and tables answers faster.
env -u AWS_ENDPOINT_URL cargo test --workspace --test soak_moto --locked -- --exact "$SOAK_MOTO" --nocapture 2>&1 | grep -v '"_aws":'

log "IAM check: the checker's unit tests, then every recorded call against its function's role"
"$VENV/bin/python" -m unittest discover -s scripts/iam
"$VENV/bin/python" scripts/iam/check_iam.py --template template.yaml --recording "$MOTO_RECORDING"

log "leak scan: no caller data in any log line, queue message attribute or table value of the suite"
"$VENV/bin/python" -m unittest discover -s scripts -p 'test_leak_scan.py'
"$VENV/bin/python" scripts/leak_scan.py --recording "$MOTO_RECORDING" --logs "$NPHOOKS_TEST_LOG_DIR"

if [ "${NPHOOKS_SKIP_SAM_BUILD:-0}" = 1 ]; then
  log "template lint and sam build skipped (NPHOOKS_SKIP_SAM_BUILD=1)"
else
  log "the functions' release arm64 build (scripts/sam-build.sh, started with the run)"
  compile_status=0
  wait "$SAM_COMPILE_PID" || compile_status=$?
  cat "$SAM_COMPILE_LOG"
  [ "$compile_status" = 0 ] || { echo "scripts/sam-build.sh --install-and-compile failed (exit $compile_status)" >&2; exit "$compile_status"; }
  log "template lint and sam build (each function's binary is already built: sam build copies it)"
  scripts/sam-build.sh --installed
fi
log "all checks passed"
