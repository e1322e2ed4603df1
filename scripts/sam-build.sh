#!/usr/bin/env bash
# Lints template.yaml (cfn-lint, sam validate --lint, checkov with the reasons in
# .checkov.yaml) and builds every Lambda the way `sam build` does for a deploy
# (cargo-lambda, arm64, no Docker, no AWS account), then prints the build time and the
# size of each function's zip. Installs its tools into ./.venv-sam on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${NPHOOKS_SAM_VENV:-$PWD/.venv-sam}"
TOOLS=("aws-sam-cli==1.161.1" "cfn-lint==1.51.0" "cargo-lambda==1.9.2")
CHECKOV="checkov==3.3.30"

log() { printf '\n== %s\n' "$*"; }

install_tools() {
  log "SAM tools (${TOOLS[*]}, $CHECKOV) in $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}"
  # checkov pins its own dependencies: it gets a virtualenv of its own, inside $VENV.
  [ -x "$VENV/checkov/bin/python" ] || python3 -m venv "$VENV/checkov"
  "$VENV/checkov/bin/pip" install --quiet --disable-pip-version-check "$CHECKOV"
  rustup target add aarch64-unknown-linux-gnu
}
# Every function's binary, one cargo invocation: the same `cargo lambda build --release
# --arm64 --bin X` that `sam build` runs per function (same features, so `sam build` then
# finds each one fresh), but the six fat-LTO links run side by side instead of in turn.
compile_functions() {
  local bins=()
  for binary in $(sed -n 's/^ *Binary: *//p' template.yaml); do bins+=(--bin "$binary"); done
  log "cargo lambda build --release --arm64 ${bins[*]}"
  local started; started=$(date +%s)
  cargo lambda build --release --arm64 "${bins[@]}"
  echo "compiling the functions took $(( $(date +%s) - started ))s"
}

export PATH="$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0
# The deploy build is never linted (scripts/test.sh lints its own build): without these
# it is the same build `sam build` makes, and finds fresh what compile_functions made.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
case "${1:-}" in
  # scripts/test.sh installs the tools and compiles the functions while the tests build and run.
  --install-only) install_tools; exit 0 ;;
  --install-and-compile)
    # scripts/test.sh starts this in a session of its own (setsid), so with the kernel's
    # autogroup scheduling it would get a CPU share equal to the tests' whatever its nice
    # value: lower the group's own, so it takes only what the tests leave idle.
    echo 19 >/proc/self/autogroup 2>/dev/null || true
    install_tools; compile_functions; exit 0 ;;
  --installed) ;;
  *) install_tools; compile_functions ;;
esac
# sam validate needs a region and some credentials, never a real account.
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"

log "cfn-lint template.yaml"
cfn-lint template.yaml

log "sam validate --lint"
AWS_ENDPOINT_URL= sam validate --lint --region "$AWS_REGION"

log "checkov ($CHECKOV; skipped checks and their reasons: .checkov.yaml)"
"$VENV/checkov/bin/checkov" --config-file .checkov.yaml -f template.yaml

log "sam build (cargo-lambda, arm64)"
started=$(date +%s)
AWS_ENDPOINT_URL= sam build --beta-features
elapsed=$(( $(date +%s) - started ))

log "artifacts"
status=0
for function in ReceiverFunction CrmFunction EmailFunction SlackFunction NotifyFunction CallbackFunction; do
  bootstrap=".aws-sam/build/$function/bootstrap"
  if [ ! -x "$bootstrap" ]; then
    echo "MISSING: $bootstrap" >&2
    status=1
    continue
  fi
  "$VENV/bin/python" - "$function" "$bootstrap" <<'PY'
import io, os, sys, zipfile
name, path = sys.argv[1], sys.argv[2]
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(path, "bootstrap")
print(f"{name:<18} bootstrap {os.path.getsize(path)/1e6:6.2f} MB   zip {len(buffer.getvalue())/1e6:6.2f} MB")
PY
done
echo "sam build took ${elapsed}s"
exit "$status"
