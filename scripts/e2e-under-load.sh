#!/usr/bin/env bash
# Runs the end-to-end suite several times in a row on a machine loaded on purpose, to show it is not flaky.
# Load: one CPU burner per core (busy loops, niced so they compete like other CI jobs rather than starve the
# suite outright) and two e2e test files at once instead of one. Stops at the first failing run.
#   scripts/e2e-under-load.sh [RUNS]    (default 5)
#   E2E_LOAD_BURNERS=N                  burners (default: the number of CPUs)
#   E2E_LOAD_CONCURRENCY=N              e2e files at once (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
burners=${E2E_LOAD_BURNERS:-$(nproc)}
concurrency=${E2E_LOAD_CONCURRENCY:-2}

pids=()
stop_burners() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_burners EXIT INT TERM
for _ in $(seq 1 "$burners"); do
  # Bounded: each burner ends by itself after 2 hours even if this script is killed without its trap.
  nice -n 5 timeout 7200 sh -c 'while :; do :; done' &
  pids+=($!)
done

echo "e2e-under-load: $runs runs, $burners CPU burners, $concurrency e2e files at once" >&2
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  log=$(mktemp -t nim-e2e-load.XXXXXX)
  if NIM_TEST_ONLY=e2e NIM_TEST_CONCURRENCY="$concurrency" bash scripts/test.sh >"$log" 2>&1; then
    echo "e2e-under-load: run $i passed in $(( $(date +%s) - start ))s: $(grep -E '^# (pass|fail) ' "$log" | tr '\n' ' ')" >&2
    rm -f "$log"
  else
    echo "e2e-under-load: run $i FAILED after $(( $(date +%s) - start ))s; log: $log" >&2
    grep -E '^not ok|^# (pass|fail) ' "$log" >&2 || true
    exit 1
  fi
done
echo "e2e-under-load: $runs of $runs runs passed" >&2
