#!/usr/bin/env bash
# Makes `promtool` (Prometheus' rule checker) available for test/unit/dashboard.test.ts: from Debian's
# `prometheus` package, installed with apt-get when missing. Needs root (CI runs as root); otherwise it says
# what to run and fails, so the test fails loudly instead of skipping.
#   PROMTOOL   use this binary instead (printed back when it exists)
# Prints the path of promtool on stdout.
set -euo pipefail

if [ -n "${PROMTOOL:-}" ]; then
  if [ -x "$PROMTOOL" ]; then echo "$PROMTOOL"; exit 0; fi
  echo "install-promtool.sh: ERROR: PROMTOOL=$PROMTOOL is not an executable file" >&2
  exit 1
fi
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-promtool.sh: ERROR: promtool is not on PATH and there is no apt-get to install Debian's 'prometheus' package." >&2
  echo "install-promtool.sh: install promtool (it ships with every Prometheus release) or set PROMTOOL=/path/to/promtool." >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-promtool.sh: ERROR: promtool is not on PATH; run as root: apt-get update && apt-get install -y --no-install-recommends prometheus" >&2
  echo "install-promtool.sh: (or set PROMTOOL=/path/to/promtool)" >&2
  exit 1
fi

echo "install-promtool.sh: installing Debian's 'prometheus' package for promtool" >&2
export DEBIAN_FRONTEND=noninteractive
# The package's service is never started here: policy-rc.d answers 101 (action forbidden) while it installs.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends prometheus >&2
command -v promtool
