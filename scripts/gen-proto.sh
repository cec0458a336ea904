#!/usr/bin/env bash
# Regenerates the Go code for every .proto under proto/.
# Needs protoc (Debian: apt-get install protobuf-compiler, 3.21.x); the Go
# plugins are pinned in tools/gen/go.mod and run through `go tool`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -modfile=tools/gen/go.mod -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -modfile=tools/gen/go.mod -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
mapfile -t files < <(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
PATH="$bin:$PATH" protoc -I proto \
  --go_out=. --go_opt=module=github.com/ostia/ostia \
  --go-grpc_out=. --go-grpc_opt=module=github.com/ostia/ostia \
  "${files[@]}"
echo "generated ${#files[@]} proto files"
