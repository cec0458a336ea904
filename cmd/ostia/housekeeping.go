package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	"github.com/ostia/ostia/sagas/certrotation"
)

// certCandidatesPage is how many amphorae one read of the view returns.
const certCandidatesPage = 500

// certCandidates lists, from the amphora view, the amphorae in a rotatable
// status whose certificate expires before a time and that are not busy
// rotating already. The view may lag behind; the rotator checks every
// candidate against its event stream.
func certCandidates(p *projections.Projector) certrotation.Candidates {
	return func(ctx context.Context, before time.Time) ([]string, error) {
		var out []string
		q := projections.Query{Limit: certCandidatesPage, Fields: []string{"id", "cert_expiration", "cert_busy"},
			Filters: map[string][]string{"status": {amphora.StatusAllocated, amphora.StatusReady, amphora.StatusFailoverStopped}}}
		for {
			page, err := p.List(ctx, views.KindAmphora, q)
			if err != nil {
				return nil, fmt.Errorf("list amphorae: %w", err)
			}
			for _, raw := range page.Items {
				var a struct {
					ID             string  `json:"id"`
					CertExpiration *string `json:"cert_expiration"`
					CertBusy       bool    `json:"cert_busy"`
				}
				if err := json.Unmarshal(raw, &a); err != nil {
					return nil, fmt.Errorf("read amphora view: %w", err)
				}
				if a.CertBusy || a.CertExpiration == nil {
					continue
				}
				exp, err := time.Parse(views.TimeLayout, *a.CertExpiration)
				if err == nil && !exp.Before(before) {
					continue
				}
				// An unreadable expiry is left to the rotator's own check.
				out = append(out, a.ID)
			}
			if !page.Full {
				return out, nil
			}
			q.Marker = page.LastID
		}
	}
}
