#!/usr/bin/env bash
# Makes sure a real OpenStack Keystone answers for the end-to-end tests in
# e2e/ (the `openstack` CLI run with Keystone authentication). It runs the
# shared anchor script keystone-setup.sh, which installs Debian's Keystone
# (Zed) and the OpenStack client, and creates on http://127.0.0.1:5000/v3:
#   admin/admin    project admin, role admin
#   demo/demo      project demo, roles member + load-balancer_member
#   reader/reader  project demo, roles reader + load-balancer_observer
#   octavia/octavia project service, roles admin + service (Ostia's service user)
#   service "octavia" (type load-balancer) with endpoints -> $LB_URL
# and then adds (this script, not the anchor):
#   alt/alt        project alt, roles member + load-balancer_member (a second
#                  project for the tests' project-isolation checks)
# Needs root or sudo, PostgreSQL (scripts/ensure-postgres.sh) and apt.
#
# Each test run registers a catalog region of its own (load-balancer ->
# the Ostia it started, network -> its fake Neutron, identity) and removes
# it afterwards, so the RegionOne endpoint registered here ($LB_URL, default
# Ostia's port http://127.0.0.1:9876, the one `make up` uses) only matters
# for manual use with the clouds.yaml written to $OSTIA_KEYSTONE_DIR.
#
# Environment:
#   OSTIA_KEYSTONE_SETUP  the setup script (default: ../shared/anchors/keystone/
#                         keystone-setup.sh next to the repository)
#   OSTIA_KEYSTONE_DIR    where the script copy, Keystone's state, clouds.yaml
#                         and the *-openrc files live (default /var/tmp/ostia-keystone)
#   KS_PORT, LB_URL       passed to the setup script
# Stop Keystone with: "$OSTIA_KEYSTONE_DIR/keystone-stop.sh"
set -euo pipefail
cd "$(dirname "$0")/.."

setup=${OSTIA_KEYSTONE_SETUP:-$(pwd)/../shared/anchors/keystone/keystone-setup.sh}
dir=${OSTIA_KEYSTONE_DIR:-/var/tmp/ostia-keystone}
export KS_PORT=${KS_PORT:-5000}
export LB_URL=${LB_URL:-http://127.0.0.1:9876}
ks_url="http://127.0.0.1:${KS_PORT}/v3"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# token USER PASSWORD PROJECT: succeeds when Keystone issues a project token.
token() {
  curl -fsS -o /dev/null -m 10 -H 'Content-Type: application/json' "$ks_url/auth/tokens" -d @- <<EOF
{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "$1", "domain": {"id": "default"}, "password": "$2"}}},
          "scope": {"project": {"name": "$3", "domain": {"id": "default"}}}}}
EOF
}
ready() {
  token admin admin admin && token demo demo demo && token reader reader demo && token octavia octavia service
}

if command -v openstack >/dev/null 2>&1 && curl -fsS -m 5 -o /dev/null "$ks_url" 2>/dev/null && ready 2>/dev/null; then
  echo "ensure-keystone: Keystone already answers at $ks_url with the admin, demo, reader and octavia users"
else
  if [ ! -f "$setup" ]; then
    echo "ensure-keystone: setup script $setup not found (set OSTIA_KEYSTONE_SETUP)" >&2
    exit 1
  fi
  # Run a copy so that Keystone's state and the generated clouds.yaml/openrc
  # files stay out of the shared anchor directory.
  as_root mkdir -p "$dir"
  as_root cp "$setup" "$dir/keystone-setup.sh"
  stop=$(dirname "$setup")/keystone-stop.sh
  if [ -f "$stop" ]; then as_root cp "$stop" "$dir/keystone-stop.sh"; fi
  echo "ensure-keystone: running keystone-setup.sh in $dir (installs packages on first use; ~1-3 min)"
  as_root env KS_PORT="$KS_PORT" LB_URL="$LB_URL" bash "$dir/keystone-setup.sh"
  if ! ready; then
    echo "ensure-keystone: Keystone at $ks_url does not issue tokens for admin, demo, reader and octavia" >&2
    exit 1
  fi
fi

# The second member project "alt".
if ! token alt alt alt 2>/dev/null; then
  echo "ensure-keystone: creating project and user alt"
  export OS_AUTH_URL=$ks_url OS_IDENTITY_API_VERSION=3 OS_USERNAME=admin OS_PASSWORD=admin OS_PROJECT_NAME=admin \
    OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=RegionOne OS_INTERFACE=public
  unset OS_CLOUD OS_CLIENT_CONFIG_FILE
  # list-based existence checks, as keystone-setup.sh does (Debian osc 6.0 bugs)
  exists() { local out; out=$(openstack "$1" list -f value -c Name); grep -qxF "$2" <<<"$out"; }
  exists project alt || openstack project create --domain default alt >/dev/null
  exists user alt || openstack user create --domain default --password alt alt >/dev/null
  openstack user set --password alt alt
  for r in member load-balancer_member; do openstack role add --project alt --user alt "$r"; done
  if ! token alt alt alt; then
    echo "ensure-keystone: Keystone does not issue a token for alt/alt in project alt" >&2
    exit 1
  fi
fi
echo "ensure-keystone: Keystone ready at $ks_url (users admin, demo, reader, octavia, alt)"
