#!/usr/bin/env bash
# Installs what building, booting and testing gridnode needs on Debian 12, as
# root, idempotently: a second run installs nothing and asks no network.
set -euo pipefail

pkgs=(
  qemu-system-x86 qemu-utils ovmf        # the test bench: QEMU, SeaBIOS, OVMF
  isolinux syslinux-common ipxe systemd-boot-efi  # boot loaders put on media
  pci.ids cpio zstd e2fsprogs            # image contents and checks
  xorriso dosfstools mtools fdisk        # test oracles (internal/need) and the comparison benchmark
  util-linux binutils coreutils mount iproute2  # more oracles and test tools (blkid, objdump, sha256sum, losetup, ip)
  skopeo                                 # the image pull bench's peer (tests/bench_pull_test.go)
  postgresql                             # the registrar's scaled store, tested
  chromium                               # the dashboard's browser test
  git ca-certificates curl unzip make gcc
  libseccomp-dev                         # static libseccomp.a for the container helper
  busybox-static runc nftables           # workload tests: test image, oracles
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# apt-get download (the builder fetches kernel and firmware packages) needs
# package lists; a fresh machine may have none.
if ! apt-cache policy linux-image-amd64 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq
fi

# Go: the version go.mod names, from the Go module proxy's toolchain module
# when the machine has none.
want=$(awk '/^go /{print $2}' "$(dirname "$0")/../go.mod")
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "deps: installing Go $want"
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go${want}.linux-amd64.zip"
  unzip -q "$tmp/go.zip" -d "$tmp"
  rm -rf /usr/local/go && mv "$tmp/golang.org/toolchain@v0.0.1-go${want}.linux-amd64" /usr/local/go
  chmod -R a+rX /usr/local/go && chmod +x /usr/local/go/bin/* /usr/local/go/pkg/tool/*/* 
  rm -rf "$tmp"
fi
