#!/usr/bin/env bash
# Build the real kube-apiserver + embedded etcd test harness (test/apiserver) into
# .cache/bin/nim-test-apiserver. Cached: does nothing when the binary is newer than
# test/apiserver/{go.mod,go.sum,*.go} and this script. A cold build compiles k8s.io/kubernetes and
# takes many minutes on 2 cores; GOMODCACHE/GOCACHE are left at their defaults so later builds reuse them.
#
# Usage: scripts/build-apiserver.sh [--force]
set -euo pipefail

K8S_VERSION=v1.36.3 # keep in sync with test/apiserver/go.mod
K8S_MAJOR=1
K8S_MINOR=36

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/test/apiserver"
out="$root/.cache/bin/nim-test-apiserver"
force=0
[[ "${1:-}" == "--force" ]] && force=1

if ! command -v go >/dev/null 2>&1; then
  echo "build-apiserver: ERROR: 'go' was not found on PATH." >&2
  echo "build-apiserver: Go >= 1.26 is needed to build the real kube-apiserver test harness ($src)." >&2
  echo "build-apiserver: install Go (https://go.dev/dl/) or skip the apiserver integration tests." >&2
  exit 127
fi

if [[ $force -eq 0 && -x "$out" ]]; then
  stale=0
  for f in "$src"/go.mod "$src"/go.sum "$src"/*.go "${BASH_SOURCE[0]}"; do
    if [[ "$f" -nt "$out" ]]; then stale=1; break; fi
  done
  if [[ $stale -eq 0 ]]; then
    echo "build-apiserver: $out is up to date" >&2
    exit 0
  fi
fi

ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=$K8S_MAJOR"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$K8S_MINOR"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"

echo "build-apiserver: building $out (k8s.io/kubernetes $K8S_VERSION, $(go version | cut -d' ' -f3)); a cold build takes 10+ minutes" >&2
mkdir -p "$(dirname "$out")"
start=$(date +%s)
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$src" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -trimpath -ldflags "$ldflags" -o "$tmp" .)
mv -f "$tmp" "$out"
echo "build-apiserver: built $out in $(($(date +%s) - start))s" >&2
