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

proto:
	./scripts/gen-proto.sh

bench:
	go test ./bench/ -run '^$$' -bench . -benchtime 2000x
