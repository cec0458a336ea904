package postgres

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolCollector exports a connection pool's statistics: how often and how
// long callers waited for a connection (a busy pool shows here before it
// shows as latency), and the connections in each state.
type PoolCollector struct {
	pool                         *pgxpool.Pool
	waits, waited, acquires, cns *prometheus.Desc
}

// NewPoolCollector returns a collector for pool; name labels its series.
func NewPoolCollector(pool *pgxpool.Pool, name string) *PoolCollector {
	l := prometheus.Labels{"pool": name}
	return &PoolCollector{pool: pool,
		waits: prometheus.NewDesc("ostia_db_pool_acquire_waits_total",
			"Connection acquisitions that found no idle connection and waited for one to open or be released.", nil, l),
		waited: prometheus.NewDesc("ostia_db_pool_acquire_wait_seconds_total",
			"Time spent acquiring connections, waits included.", nil, l),
		acquires: prometheus.NewDesc("ostia_db_pool_acquires_total", "Successful connection acquisitions.", nil, l),
		cns: prometheus.NewDesc("ostia_db_pool_connections", "Connections of the pool by state.",
			[]string{"state"}, l),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waits
	ch <- c.waited
	ch <- c.acquires
	ch <- c.cns
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.cns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.cns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.cns, prometheus.GaugeValue, float64(s.MaxConns()), "max")
}
