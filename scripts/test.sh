#!/usr/bin/env bash
# The test command of README.md, and what CI runs (.ci/run calls this script).
#
# On a fresh machine with only the Rust toolchain, Python 3 and gcc it installs what the tests
# need — kubectl, PostgreSQL, Chromium + ChromeDriver, Prometheus + node_exporter, age, zstd, jq,
# sqlite3, faketime (Debian packages),
# aiosmtpd, moto and the aws CLI (PyPI) —
# then checks formatting, lints, manifests, and runs every test in the workspace: unit tests,
# tests against real PostgreSQL / SMTP / Chromium, and end-to-end tests that drive kubectl
# against devcluster. Tests start the services they need themselves, on free loopback ports.
# Last, the time-sensitive tests run again with the clock shifted a year ahead (faketime), so
# a test pinned to a calendar date fails here before that date comes.
#
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh -p tend    only the tests of one package (after the checks)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "error: need root (or sudo) to run: $*" >&2; exit 1
    fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_postgres() {
    command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

step "system packages"
missing=()
command -v kubectl >/dev/null || missing+=(kubernetes-client)
have_postgres && command -v pg_dump >/dev/null || missing+=(postgresql postgresql-client)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# The AlertRule prometheus source's end-to-end tests (testkit/src/prometheus.rs).
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
[ -x /usr/bin/prometheus-node-exporter ] || missing+=(prometheus-node-exporter)
for tool in age zstd jq sqlite3 faketime; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    if ! command -v apt-get >/dev/null; then
        echo "error: apt-get not found; install these yourself: ${missing[*]}" >&2
        exit 1
    fi
    apt_install "${missing[@]}"
fi
pip_missing=()
python3 -c 'import aiosmtpd' 2>/dev/null || pip_missing+=(aiosmtpd)
command -v moto_server >/dev/null || pip_missing+=('moto[server]')
command -v aws >/dev/null || pip_missing+=(awscli)
if [ ${#pip_missing[@]} -gt 0 ]; then
    echo "installing (PyPI): ${pip_missing[*]}"
    python3 -m pip install --quiet --disable-pip-version-check "${pip_missing[@]}"
fi
# pip may install console scripts into a directory that is not on PATH yet.
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH
echo "kubectl: $(kubectl version --client 2>/dev/null | head -n1)"
echo "postgres: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -n1)"
echo "chromium: $(chromium --version 2>/dev/null || true)"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "manifests build with kustomize"
kubectl kustomize manifests >/dev/null
echo "ok"

step "tests"
# The end-to-end tests run the `tend` and `fieldbook` binaries; build them first, with the same
# command the test harness runs, so that no test spends its time compiling.
cargo build --locked --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast "$@"
    # nextest does not run doctests.
    cargo test --workspace --locked --doc "$@"
else
    cargo test --workspace --locked --no-fail-fast "$@"
fi

if [ $# -eq 0 ]; then
    step "time-sensitive tests with the clock a year ahead"
    # The clock-driven code (scheduler, retention, cron, drills' naming, test clocks) runs again
    # under faketime, so a test pinned to a calendar date fails here before that date comes:
    # every unit test of the controller's crates, and every end-to-end test except the
    # fault-injection suites (their subject is the API server's failures, not time, and they are
    # the slowest). The tend and fieldbook binaries the end-to-end tests start were built above,
    # with the real clock: TEND_PREBUILT_BINARIES stops the harness from running cargo (rustc
    # hangs under faketime); the binaries themselves run with the shifted clock.
    host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${host}_RUNNER=faketime -f +365d"
    export FAKETIME_DONT_FAKE_MONOTONIC=1 TEND_PREBUILT_BINARIES=1
    echo "faketime: $(faketime -f +365d date -u)"
    time_filter='((package(tend) | package(tend-crds) | package(tend-backup) | package(tend-notify) | package(tend-testkit)) & kind(lib)) | (package(tend-e2e) & !binary(/faults/))'
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --locked --no-fail-fast -E "$time_filter"
    else
        cargo test --locked --no-fail-fast -p tend -p tend-crds -p tend-backup -p tend-notify -p tend-testkit --lib
        for t in $(cd tests/tests && ls *.rs | sed 's/\.rs$//' | grep -v faults); do
            cargo test --locked --no-fail-fast -p tend-e2e --test "$t"
        done
    fi
fi
step "done"
