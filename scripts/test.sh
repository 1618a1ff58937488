#!/usr/bin/env bash
# Runs every test on a fresh clone: installs what the tests need, builds, then runs node's test runner.
#   NIM_TEST_LONG=1   long mode (fuzz suites run their full request counts)
#   NIM_TEST_ONLY=unit|e2e   run one suite
#   NIM_TEST_CONCURRENCY=N   test files run at once (node's default: CPUs - 1)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npm run --silent build

suite=${NIM_TEST_ONLY:-all}
files=()
if [ "$suite" = all ] || [ "$suite" = unit ]; then files+=(test/unit/*.test.ts); fi
if [ "$suite" = all ] || [ "$suite" = e2e ]; then
  # The e2e suite needs the Go-built kube-apiserver and helm; both are built from the Go module proxy.
  if [ -f scripts/build-apiserver.sh ]; then bash scripts/build-apiserver.sh; fi
  if [ -f scripts/build-operator.sh ]; then bash scripts/build-operator.sh; fi
  if [ -f scripts/install-helm.sh ]; then bash scripts/install-helm.sh; fi
  shopt -s nullglob
  files+=(test/e2e/*.test.ts)
fi
# node picks the spec reporter on a terminal and TAP otherwise (CI reads its closing summary).
concurrency=()
if [ -n "${NIM_TEST_CONCURRENCY:-}" ]; then concurrency=(--test-concurrency="$NIM_TEST_CONCURRENCY"); fi
exec node --import tsx --test --test-timeout=600000 "${concurrency[@]}" "${files[@]}"
