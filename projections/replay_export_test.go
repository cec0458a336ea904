package projections

// ReplayAuditBuffer returns cfg for a replay that holds at most n audit
// rows in memory before writing them (instead of replayAuditBuffer).
func ReplayAuditBuffer(cfg ReplayConfig, n int) ReplayConfig {
	cfg.auditBuffer = n
	return cfg
}

// ReplayWithoutCopy returns cfg for a replay that writes every row with the
// INSERT statements COPY falls back to.
func ReplayWithoutCopy(cfg ReplayConfig) ReplayConfig {
	cfg.noCopy = true
	return cfg
}
