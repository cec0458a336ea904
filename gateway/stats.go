package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/ostia/ostia/projections"
)

// Statistics come from the listener_stats table the health manager keeps
// (one row per listener and amphora, totals already folded from deltas).

// statsObject is Octavia's {"stats": {...}} body.
type statsObject struct {
	BytesIn           int64 `json:"bytes_in"`
	BytesOut          int64 `json:"bytes_out"`
	ActiveConnections int64 `json:"active_connections"`
	TotalConnections  int64 `json:"total_connections"`
	RequestErrors     int64 `json:"request_errors"`
}

// sumStats adds the statistics of every row whose column equals id
// (column is listener_id or loadbalancer_id).
func (a *api) sumStats(ctx context.Context, column, id string) (statsObject, error) {
	var s statsObject
	if a.cfg.Pool == nil {
		return s, nil
	}
	if column != "listener_id" && column != "loadbalancer_id" {
		return s, fmt.Errorf("stats by %q: unsupported column", column)
	}
	err := a.cfg.Pool.QueryRow(ctx, `SELECT COALESCE(SUM(bytes_in), 0), COALESCE(SUM(bytes_out), 0),
		COALESCE(SUM(active_connections), 0), COALESCE(SUM(total_connections), 0), COALESCE(SUM(request_errors), 0)
		FROM listener_stats WHERE `+column+` = $1`, id).
		Scan(&s.BytesIn, &s.BytesOut, &s.ActiveConnections, &s.TotalConnections, &s.RequestErrors)
	if err != nil {
		return s, fmt.Errorf("read statistics of %s %s: %w", column, id, err)
	}
	return s, nil
}

type amphoraStat struct {
	ID             string `json:"id"`
	ListenerID     string `json:"listener_id"`
	LoadBalancerID string `json:"loadbalancer_id"`
	statsObject
}

// amphoraListenerStats lists an amphora's statistics per listener.
func (a *api) amphoraListenerStats(ctx context.Context, amphoraID string) ([]amphoraStat, error) {
	if a.cfg.Pool == nil {
		return nil, nil
	}
	rows, err := a.cfg.Pool.Query(ctx, `SELECT listener_id, loadbalancer_id, bytes_in, bytes_out, active_connections,
		total_connections, request_errors FROM listener_stats WHERE amphora_id = $1 ORDER BY listener_id`, amphoraID)
	if err != nil {
		return nil, fmt.Errorf("read statistics of amphora %s: %w", amphoraID, err)
	}
	defer rows.Close()
	var out []amphoraStat
	for rows.Next() {
		s := amphoraStat{ID: amphoraID}
		if err := rows.Scan(&s.ListenerID, &s.LoadBalancerID, &s.BytesIn, &s.BytesOut, &s.ActiveConnections,
			&s.TotalConnections, &s.RequestErrors); err != nil {
			return nil, fmt.Errorf("read statistics of amphora %s: %w", amphoraID, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func isNotFound(err error) bool { return errors.Is(err, projections.ErrNotFound) }
