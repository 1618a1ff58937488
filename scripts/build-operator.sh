#!/usr/bin/env bash
# Build the real NVIDIA NIM operator for the end-to-end suite into .cache/nim-operator (binary and its
# manifests) with the shared build script beside this repository ($(dirname repo)/shared). Cached there:
# a no-op when the binary is newer than the build script.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(dirname "$root")/shared/tools/build-nim-operator.sh"
if [ ! -f "$build" ]; then
  echo "build-operator: ERROR: $build not found: the NIM operator's source and build script live in ../shared beside this repository" >&2
  exit 1
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build-operator: ERROR: 'go' was not found on PATH; Go is needed to build the NIM operator for the end-to-end suite" >&2
  exit 127
fi
exec bash "$build" "$root/.cache/nim-operator"
