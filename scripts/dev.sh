#!/usr/bin/env bash
# The one-command dev stack: devcluster (an embedded Kubernetes API server) with the tend CRDs,
# the dev secrets and the examples applied, the tend controller, and fieldbook on SQLite.
# Needs only Rust (cargo). State lives under .dev/ (gitignored); Ctrl-C stops everything.
#
#   scripts/dev.sh                 build, start, print what to try next
#   TEND_DEV_PORT=6443 scripts/dev.sh     fixed API port (default: any free port)
#   TEND_DEV_FRESH=1 scripts/dev.sh       start from an empty cluster (deletes .dev/cluster)
#   TEND_DEV_NO_FIELDBOOK=1 scripts/dev.sh  do not start fieldbook
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dev="$root/.dev"
port="${TEND_DEV_PORT:-0}"
metrics_port="${TEND_DEV_METRICS_PORT:-9464}"
fieldbook_port="${TEND_DEV_FIELDBOOK_PORT:-8080}"
target="${CARGO_TARGET_DIR:-$root/target}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) and retry"

say "building devcluster and tend (debug; the first build takes several minutes)"
cargo build -p devcluster -p tend
with_fieldbook=0
if [[ -z "${TEND_DEV_NO_FIELDBOOK:-}" && -f app/Cargo.toml ]] && grep -q '^name = "fieldbook"' app/Cargo.toml; then
  say "building fieldbook"
  # fieldbook is optional for the stack: a failed build is reported, the rest still starts.
  if cargo build -p fieldbook; then
    with_fieldbook=1
  else
    echo "dev.sh: fieldbook did not build; starting without it (TEND_DEV_NO_FIELDBOOK=1 skips this step)" >&2
  fi
fi

mkdir -p "$dev/logs"
if [[ -n "${TEND_DEV_FRESH:-}" ]]; then rm -rf "$dev/cluster"; fi
kubeconfig="$dev/kubeconfig"
rm -f "$kubeconfig"

pids=()
cleanup() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    say "stopping"
    # Reverse order: controller and app first, the API server last (it saves its state).
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting devcluster (state in .dev/cluster, log in .dev/logs/devcluster.log)"
"$target/debug/devcluster" serve --port "$port" --data-dir "$dev/cluster" --kubeconfig "$kubeconfig" \
  --create-namespace tend-system \
  --apply manifests/crds --apply examples/dev-secrets --apply examples \
  >"$dev/logs/devcluster.out" 2>"$dev/logs/devcluster.log" &
pids+=($!)
for _ in $(seq 1 300); do
  grep -q '^devcluster serving' "$dev/logs/devcluster.out" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$dev/logs/devcluster.out" "$dev/logs/devcluster.log" >&2; die "devcluster exited"; }
  sleep 0.1
done
grep -q '^devcluster serving' "$dev/logs/devcluster.out" || die "devcluster did not come up (see .dev/logs/devcluster.log)"
sed 's/^/    /' "$dev/logs/devcluster.out"

say "starting tend (metrics on 127.0.0.1:$metrics_port, log in .dev/logs/tend.log)"
KUBECONFIG="$kubeconfig" "$target/debug/tend" run --metrics-addr "127.0.0.1:$metrics_port" \
  --lease-namespace tend-system --log-format text >"$dev/logs/tend.log" 2>&1 &
pids+=($!)

if ((with_fieldbook)); then
  say "starting fieldbook on http://127.0.0.1:$fieldbook_port (SQLite and photos in .dev/fieldbook)"
  mkdir -p "$dev/fieldbook"
  # The ops token matches the dev Secret fieldbook-ops that the examples reference.
  printf '%s' 'dev-ops-token-change-me' >"$dev/fieldbook/ops-token"
  "$target/debug/fieldbook" serve --listen "127.0.0.1:$fieldbook_port" \
    --database-url "$dev/fieldbook/fieldbook.db" --photo-dir "$dev/fieldbook/photos" \
    --ops-token-file "$dev/fieldbook/ops-token" --quiet >"$dev/logs/fieldbook.log" 2>&1 &
  pids+=($!)
fi

k="kubectl --kubeconfig $kubeconfig"
cat <<EOF

tend dev stack is running. Kubeconfig: $kubeconfig

Try:
  export KUBECONFIG=$kubeconfig
  kubectl get tend -A                      # every tend object, with its printer columns
  kubectl get backuppolicies -n fieldbook
  kubectl describe backuppolicy -n fieldbook fieldbook-nightly   # conditions and events
  kubectl apply -f examples/               # edit an example and re-apply
  curl -s 127.0.0.1:$metrics_port/metrics | grep ^tend_
EOF
if ((with_fieldbook)); then echo "  open http://127.0.0.1:$fieldbook_port/        # fieldbook"; fi
command -v kubectl >/dev/null || echo "  (kubectl is not installed: apt-get install -y kubernetes-client)"
echo
echo "Logs in .dev/logs/. Ctrl-C stops everything (the cluster state in .dev/cluster is kept)."
unset k

# Stop when any component exits on its own, so a crash is not hidden.
while true; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dev.sh: a component (pid $pid) exited; see .dev/logs/" >&2
      exit 1
    fi
  done
  sleep 1
done
