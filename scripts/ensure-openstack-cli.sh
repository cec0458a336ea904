#!/usr/bin/env bash
# Makes sure the OpenStack command-line client with the Octavia plugin
# (`openstack loadbalancer ...`) is installed, for the end-to-end tests in
# e2e/. Installs Debian's python3-openstackclient and python3-octaviaclient
# when one is missing (needs root or sudo). Does nothing when both are
# already installed.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in python3-openstackclient python3-octaviaclient; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "ensure-openstack-cli: installing ${missing[*]} from Debian"
  # apt-get update only when the package is unknown to the local index.
  if ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
    as_root apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "ensure-openstack-cli: $(openstack --version 2>&1 | head -n1), octaviaclient $(dpkg-query -W -f='${Version}' python3-octaviaclient)"
