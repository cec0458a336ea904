#!/usr/bin/env bash
# Makes sure a local PostgreSQL answers on 127.0.0.1:5432 with the user
# postgres/postgres and that the database "ostia" exists. Installs Debian's
# postgresql package when it is missing (needs root or sudo).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "ensure-postgres: installing PostgreSQL from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi

cluster=$(pg_lsclusters --no-header 2>/dev/null | head -n1 || true)
if [ -z "$cluster" ]; then
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  as_root pg_createcluster "$ver" main >/dev/null
  cluster=$(pg_lsclusters --no-header | head -n1)
fi
read -r ver name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  as_root pg_ctlcluster "$ver" "$name" start
fi
if [ "$port" != 5432 ]; then
  echo "ensure-postgres: cluster $ver/$name listens on $port; set OSTIA_TEST_DATABASE_URL and OSTIA_DATABASE_URL accordingly" >&2
fi

psql_admin() { as_root runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qAt "$@"; }
for _ in $(seq 1 30); do
  if psql_admin -c 'SELECT 1' >/dev/null 2>&1; then break; fi
  sleep 1
done
psql_admin -c "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'ostia'")" != 1 ]; then
  psql_admin -c 'CREATE DATABASE ostia' >/dev/null
fi
echo "ensure-postgres: PostgreSQL $ver/$name online on port $port"
