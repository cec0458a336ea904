#!/usr/bin/env bash
# Makes sure the haproxy and keepalived binaries used by the templates tests
# (haproxy -c / keepalived -t validation of rendered configurations) are
# installed. Installs Debian's packages when one is missing (needs root or
# sudo). Does nothing when both are already on PATH.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v keepalived >/dev/null 2>&1 || [ -x /usr/sbin/keepalived ] || missing+=(keepalived)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "ensure-haproxy: installing ${missing[*]} from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "ensure-haproxy: $(haproxy -v 2>/dev/null | head -n1)"
echo "ensure-haproxy: $( (command -v keepalived >/dev/null 2>&1 && keepalived -v || /usr/sbin/keepalived -v) 2>&1 | head -n1)"
