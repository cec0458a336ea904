package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/gateway"
	"github.com/ostia/ostia/gateway/auth"
	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/projections"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// newProjector builds the read-model projector the API reads and writes
// through (read-your-writes) and the projection consumer runs.
func (b *base) newProjector(pool *pgxpool.Pool, c *core) (*projections.Projector, error) {
	return projections.New(projections.Config{Pool: pool, Store: c.store, Registry: c.registry,
		Logger: b.log.With("service", "projector"), Metrics: b.metrics})
}

// newGateway builds the Octavia v2 REST API from the configuration.
func (b *base) newGateway(pool *pgxpool.Pool, c *core, views *projections.Projector) (*gateway.Server, error) {
	ac := b.cfg.API
	api := &gateway.API{Commands: c.commands, Views: views, Pool: pool, DefaultProvider: ac.DefaultProvider,
		BaseURI: ac.APIBaseURI}
	for _, d := range ac.EnabledProviderDrivers {
		name, desc, _ := strings.Cut(d, ":")
		api.Providers = append(api.Providers, gateway.Provider{Name: strings.TrimSpace(name), Description: strings.TrimSpace(desc)})
	}
	switch limit := strings.TrimSpace(ac.PaginationMaxLimit); limit {
	case "", "infinite":
		api.MaxLimit = 0
	default:
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("config: [api] pagination_max_limit: want a positive integer or \"infinite\", got %q", limit)
		}
		api.MaxLimit = n
	}
	api.QuotaDefaults = b.quotaDefaults()
	if ac.AuthStrategy == config.AuthKeystone {
		ks, err := auth.NewKeystone(auth.KeystoneConfig{AuthURL: ac.KeystoneURL, Username: ac.KeystoneServiceUser,
			Password: ac.KeystoneServicePassword, ProjectName: ac.KeystoneServiceProject,
			CacheTTL: time.Duration(ac.TokenCacheSeconds) * time.Second, Logger: b.log.With("service", "keystone")})
		if err != nil {
			return nil, err
		}
		api.Validator = ks
		api.AuthURI = ac.KeystoneURL
	}
	return gateway.New(gateway.Config{Logger: b.log.With("service", "api"), Metrics: b.metrics, API: api})
}

// projectingCommands applies the events of the worker's commands to the
// read models right away (as the API does for its own writes), so a status
// change shows in the API without waiting for the projection consumer. The
// consumer skips what was applied here.
type projectingCommands struct {
	*commands.Service
	views *projections.Projector
	log   *slog.Logger
}

func (p projectingCommands) apply(ctx context.Context, envs []*eventsv1.Envelope) {
	if err := p.views.ApplyEnvelopes(ctx, envs); err != nil {
		p.log.WarnContext(ctx, "inline projection failed; the projection consumer will catch up", "error", err)
	}
}

func (p projectingCommands) LoadBalancer(ctx context.Context, md events.Metadata, lbID string, cmd loadbalancer.Command) (*loadbalancer.State, []*eventsv1.Envelope, error) {
	st, envs, err := p.Service.LoadBalancer(ctx, md, lbID, cmd)
	if err == nil {
		p.apply(ctx, envs)
	}
	return st, envs, err
}

func (p projectingCommands) Amphora(ctx context.Context, md events.Metadata, amphoraID string, cmd amphora.Command) (*amphora.State, []*eventsv1.Envelope, error) {
	st, envs, err := p.Service.Amphora(ctx, md, amphoraID, cmd)
	if err == nil {
		p.apply(ctx, envs)
	}
	return st, envs, err
}
