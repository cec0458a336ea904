# The two commands of the README: `make up` runs Ostia on this machine,
# `make test` runs the tests. Everything else is a helper.
.PHONY: up test build proto bench

up: build
	./scripts/ensure-postgres.sh
	./bin/ostia up

test:
	./scripts/test.sh

build:
	go build -o bin/ostia ./cmd/ostia
	go build -o bin/ostia-agent ./cmd/ostia-agent

proto:
	./scripts/gen-proto.sh

bench:
	go test ./bench/ -run '^$$' -bench . -benchtime 2000x

# Ostia next to the real Octavia 11 (noop drivers, ../shared/anchors/octavia)
# on the same scenarios, one side-by-side table; see docs/benchmarks.md.
# Extra flags: make bench-compare BENCH_COMPARE_FLAGS="--reps 1 --duration 10s"
.PHONY: bench-compare
bench-compare:
	./scripts/ensure-postgres.sh
	go run ./bench/sidebyside --start-octavia --out bench/sidebyside/last-run.json --markdown bench/sidebyside/last-run.md $(BENCH_COMPARE_FLAGS)
