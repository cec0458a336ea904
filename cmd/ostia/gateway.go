package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/gateway"
	"github.com/ostia/ostia/gateway/auth"
	"github.com/ostia/ostia/internal/config"
)

// newGateway builds the Octavia v2 REST API from the configuration. The
// core must project inline (newCore with inline): the API reads the views
// its commands wrote in their own transactions.
func (b *base) newGateway(pool *pgxpool.Pool, c *core) (*gateway.Server, error) {
	if c.views == nil {
		return nil, fmt.Errorf("gateway: the command core does not project inline")
	}
	ac := b.cfg.API
	api := &gateway.API{Commands: c.commands, Views: c.views, ProjectedInline: true, Pool: pool,
		DefaultProvider: ac.DefaultProvider, BaseURI: ac.APIBaseURI, VIPs: c.vips, Certs: c.certs}
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
	return gateway.New(gateway.Config{Logger: b.log.With("service", "api"), Metrics: b.metrics, API: api,
		Foreground: c.foreground})
}
