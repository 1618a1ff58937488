#!/usr/bin/env bash
# Builds a pinned helm from the Go module proxy into .cache/bin/helm (no prebuilt download is possible here).
#   HELM_VERSION   override the pinned version (default below)
# Skips the build when .cache/bin/helm already reports that exact version.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=${HELM_VERSION:-v3.22.0}
major=${HELM_VERSION%%.*}            # v3 or v4
module="helm.sh/helm/${major}"
bin_dir="$PWD/.cache/bin"
helm_bin="$bin_dir/helm"

# The build below stamps the exact version into the binary, so an up-to-date helm needs no Go at all.
if [ -x "$helm_bin" ] && [ "$("$helm_bin" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-helm.sh: ERROR: 'go' is not on PATH; helm ${HELM_VERSION} is built with 'go install ${module}/cmd/helm@${HELM_VERSION}'." >&2
  echo "install-helm.sh: install Go >= 1.26 (see go.dev/doc/install or the distribution's golang package) and re-run." >&2
  exit 1
fi

# The release Makefile stamps the version and the default Kubernetes version (from its k8s.io/client-go
# requirement) with ldflags; `go install` does not, so stamp the same variables here. Without them helm v3
# reports a bare major.minor and defaults .Capabilities.KubeVersion to v1.20 (v4 derives it at run time).
ldflags="-s -w -X ${module}/internal/version.version=${HELM_VERSION}"
if [ "$major" = v3 ]; then
  gomod=$(cd "${TMPDIR:-/tmp}" && go mod download -json "${module}@${HELM_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  clientgo=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")   # e.g. v0.37.0
  k8s_minor=$(echo "$clientgo" | cut -d. -f2)
  if [ -z "$k8s_minor" ]; then
    echo "install-helm.sh: ERROR: cannot read k8s.io/client-go from $gomod" >&2
    exit 1
  fi
  for pkg in pkg/chartutil pkg/lint/rules; do
    ldflags+=" -X ${module}/${pkg}.k8sVersionMajor=1 -X ${module}/${pkg}.k8sVersionMinor=${k8s_minor}"
  done
fi

echo "install-helm.sh: building helm ${HELM_VERSION} with go install (takes a few minutes on 2 cores)" >&2
mkdir -p "$bin_dir"
start=$(date +%s)
GOBIN="$bin_dir" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
  go install -trimpath -ldflags "$ldflags" "${module}/cmd/helm@${HELM_VERSION}"
echo "install-helm.sh: built $("$helm_bin" version --short) in $(( $(date +%s) - start ))s -> $helm_bin" >&2
