// Package deploy holds the offline checks of Ostia's deployment assets: the
// repository's docker-compose.yml is loaded with the Compose Spec reference
// loader (compose-go) and its structure is asserted, so a typo or a drift
// from internal/config fails `go test` instead of `docker compose up`.
package deploy
