# syntax=docker/dockerfile:1
#
# Ostia control-plane image: one static `ostia` binary whose subcommands are
# the services (api, relay, worker, projector, health, migrate, ...).
#
#   docker build -t ostia:dev .
#   docker run --rm ostia:dev version

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Module downloads are cached in their own layer, so code edits do not
# refetch them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ostia ./cmd/ostia \
 && mkdir -p /out/state

# Static binary: distroless has CA certificates and tzdata and nothing else
# (no shell), and the :nonroot variant runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ostia /usr/local/bin/ostia
# Writable working directory for the few things a service keeps on disk
# (e.g. the embedded broker's ./data/kafka when it is used).
COPY --from=build --chown=65532:65532 /out/state /var/lib/ostia
WORKDIR /var/lib/ostia
USER 65532:65532
# 9876 Octavia API, 9100 metrics and /healthz, 5555/udp amphora heartbeats.
EXPOSE 9876 9100 5555/udp
ENTRYPOINT ["/usr/local/bin/ostia"]
CMD ["--help"]
