#!/usr/bin/env bash
# make release VERSION=x: writes dist/ with every boot format of
# images/node.yaml named for VERSION (vmlinuz, initramfs, cmdline, UKI,
# hybrid ISO, USB image, pxe/), manifest.json, the SPDX 2.3 SBOM
# gridnode-VERSION.spdx.json, SHA256SUMS and release.json (the release
# document: every file with its sha256 and size), signed with the release key
# RELEASE_KEY names (gridnode release keygen makes one); without it the
# release is unsigned and says so. The same checkout (or the same
# SOURCE_DATE_EPOCH) and key give the same bytes. Publish with:
#   bin/gridnode release push dist REGISTRY/REPO:VERSION
# GRIDNODE, SPEC and DIST override the binary, the spec and the folder
# (tests/release_test.go runs this script twice into temporary folders).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH GOFLAGS=-buildvcs=false

version=${1:?usage: .ci/release.sh VERSION}
gridnode=${GRIDNODE:-bin/gridnode}
spec=${SPEC:-images/node.yaml}
dist=${DIST:-dist}

rm -rf "$dist"
key=()
if [ -n "${RELEASE_KEY:-}" ]; then key=(--key "$RELEASE_KEY"); fi
# Without a key the builder says on stderr that the release is unsigned.
"$gridnode" release build "$spec" "$dist" --version "$version" "${key[@]}" >/dev/null
(cd "$dist" && sha256sum --check --quiet --strict SHA256SUMS)
echo "release $version: $dist/"
(cd "$dist" && find . -type f -printf '%P\t%s\n' | sort | awk -F'\t' '{ printf "  %-36s %12d bytes\n", $1, $2 }')
