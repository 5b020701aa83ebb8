#!/usr/bin/env bash
# Contracts live in packages below their users (node/config, node/fact,
# grid/api): nothing in modules/, build/ or grid/, tests included, may import
# the node program under init/.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(go list -deps -test -f '{{.ImportPath}}' ./modules/... ./build/... ./grid/... | grep -E '^github.com/gridnode/gridnode/init(/|$)' || true)
if [ -n "$bad" ]; then
  echo "layers: modules/, build/ or grid/ import init/ packages:" $bad
  go list -test -f '{{.ImportPath}}: {{join .Imports " "}}' ./modules/... ./build/... ./grid/... | grep -E 'gridnode/init(/| |$)'
  echo "layers: move what they need into a package below both (node/…), as node/config and node/fact are"
  exit 1
fi
