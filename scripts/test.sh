#!/usr/bin/env bash
# The test command of the README: prepares what the tests need on this
# machine (PostgreSQL, haproxy, the openstack CLI, Keystone), then runs
# every Go test.
#   OSTIA_TEST_FLAGS  extra flags for go test (for example "-run Relay -v")
#   OSTIA_LONG=1      also run the long fault and soak tests
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-postgres.sh
./scripts/ensure-haproxy.sh
# The end-to-end tests in e2e/ drive the openstack CLI, partly against
# Keystone. When either cannot be set up here, those tests skip (fail under
# CI=true) and say what is missing; the other tests run regardless.
./scripts/ensure-openstack-cli.sh ||
  echo "test.sh: ensure-openstack-cli.sh failed; the e2e CLI tests will skip (fail under CI=true)" >&2
./scripts/ensure-keystone.sh ||
  echo "test.sh: ensure-keystone.sh failed; the e2e Keystone test will skip (fail under CI=true)" >&2
export OSTIA_TEST_DATABASE_URL=${OSTIA_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable}
go vet ./...
# shellcheck disable=SC2086
go test -count=1 -timeout 25m ${OSTIA_TEST_FLAGS:-} ./... 2>&1 | tee /tmp/ostia-test.log
status=${PIPESTATUS[0]}
passed=$(grep -c '^ok ' /tmp/ostia-test.log || true)
failed=$(grep -c '^FAIL' /tmp/ostia-test.log || true)
echo "packages: $passed ok, $failed failed"
exit "$status"
