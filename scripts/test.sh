#!/usr/bin/env bash
# Runs every test on a fresh clone: installs what the tests need, builds, then runs node's test runner.
#   NIM_TEST_LONG=1   long mode (fuzz suites run their full request counts)
#   NIM_TEST_ONLY=unit|e2e   run one suite
#   NIM_TEST_CONCURRENCY=N   test files run at once (node's default: CPUs - 1)
#   NIM_TEST_RUNTIMES="22 24"  Node.js lines the unit suite runs on first, besides the machine's node
#                           (default: 22 24 for the whole suite, none for NIM_TEST_ONLY=unit|e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npm run --silent build

suite=${NIM_TEST_ONLY:-all}
files=()
if [ "$suite" = all ] || [ "$suite" = unit ]; then files+=(test/unit/*.test.ts); fi
# promtool (Debian's prometheus package) checks the chart's alert rules in test/unit/dashboard.test.ts.
if [ "$suite" = all ] || [ "$suite" = unit ]; then bash scripts/install-promtool.sh >/dev/null; fi
if [ "$suite" = all ] || [ "$suite" = e2e ]; then
  # The e2e suite needs the Go-built kube-apiserver and helm; both are built from the Go module proxy.
  if [ -f scripts/build-apiserver.sh ]; then bash scripts/build-apiserver.sh; fi
  if [ -f scripts/build-operator.sh ]; then bash scripts/build-operator.sh; fi
  if [ -f scripts/install-helm.sh ]; then bash scripts/install-helm.sh; fi
  shopt -s nullglob
  files+=(test/e2e/*.test.ts)
fi

# The unit suite on the other supported LTS lines first (from the npm registry into .cache/node), so a
# failure on any line fails the run; the whole suite then runs on the machine's node, last, so its summary
# is the closing one.
default_runtimes=""
[ "$suite" = all ] && default_runtimes="22 24"
runtimes=${NIM_TEST_RUNTIMES-$default_runtimes}
if [ -n "$runtimes" ]; then
  # shellcheck disable=SC2086 # one word per line; the assignment makes a failed install fail the run
  bins=$(bash scripts/install-node-runtimes.sh $runtimes)
  for bin in $bins; do
    echo "test.sh: unit suite on Node.js $("$bin/node" --version)" >&2
    PATH="$bin:$PATH" node --import tsx --test --test-timeout=600000 test/unit/*.test.ts
  done
  echo "test.sh: unit suite passed on Node.js $runtimes; now every suite on $(node --version)" >&2
fi

# node picks the spec reporter on a terminal and TAP otherwise (CI reads its closing summary).
concurrency=()
if [ -n "${NIM_TEST_CONCURRENCY:-}" ]; then concurrency=(--test-concurrency="$NIM_TEST_CONCURRENCY"); fi
exec node --import tsx --test --test-timeout=600000 "${concurrency[@]}" "${files[@]}"
