#!/usr/bin/env bash
# make run: a registrar on this machine's loopback with a farm, and the
# default image booted in QEMU against it, on this terminal (Ctrl-A X quits).
# State (registrar database, farmer key, farm id, the node's disk) lives in
# OUT/ and is reused, so a second `make run` boots the same node again.
set -euo pipefail
bin=${1:-bin/gridnode} out=${2:-out} port=${3:-8080}
state=$out/local
mkdir -p "$state"
url=http://127.0.0.1:$port

if curl -fsS -o /dev/null "$url/api/v1/farms" 2>/dev/null; then
  echo "run: a registrar already answers on $url; using it"
else
  "$bin" registrar --listen "127.0.0.1:$port" --db "$state/registrar.db" >"$state/registrar.log" 2>&1 &
  reg=$!
  trap 'kill $reg 2>/dev/null; wait $reg 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$url/api/v1/farms" 2>/dev/null && break
    kill -0 $reg 2>/dev/null || { echo "run: the registrar did not start:"; cat "$state/registrar.log"; exit 1; }
    sleep 0.1
  done
  echo "run: registrar on $url (dashboard: $url/, log: $state/registrar.log)"
fi

key=$state/farmer.key
farm() { "$bin" farm --key "$key" --registrar "$url" "$@"; }
[ -f "$key" ] || farm keygen >/dev/null
farm account >/dev/null
if [ ! -s "$state/farm.id" ]; then
  farm create --name localfarm --stellar GBZ6VHJ4KQ5Q7J4Y5G2N3X6TZ3V5W6Q7R2S3T4U5V6W7X8Y9Z2A3B4C5 |
    awk '/^farm /{print $2}' >"$state/farm.id"
fi
id=$(cat "$state/farm.id")
echo "run: farm $id; \`$bin farm nodes --key $key --registrar $url\` lists its nodes"

"$bin" run "$out" --disk 8G:ssd --registrar "http://10.0.2.2:$port" \
  --append "gridnode.farm=$id gridnode.uptime=1m"
