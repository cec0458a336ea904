package projections_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuMeter measures the CPU time a piece of work costs, on a machine that
// may be busy with other work (where wall-clock rates say little): the
// test process's own CPU time (getrusage) and that of the PostgreSQL
// client backends serving the test database (from /proc, so only when the
// server runs on this machine; 0 otherwise). The server's background
// processes (WAL writer, checkpointer, autovacuum) are left out: they are
// shared with other databases, and autovacuum mostly cleans up after the
// benchmark's DropGeneration.
type cpuMeter struct {
	e      *env
	goFrom time.Duration
	pgFrom map[int]time.Duration
}

func startCPU(e *env) *cpuMeter {
	return &cpuMeter{e: e, goFrom: processCPU(), pgFrom: backendCPU(e)}
}

// stop returns the CPU time of the test process and of the test
// database's backends since start.
func (m *cpuMeter) stop() (goCPU, pgCPU time.Duration) {
	goCPU = processCPU() - m.goFrom
	for pid, t := range backendCPU(m.e) {
		pgCPU += t - m.pgFrom[pid]
	}
	return goCPU, pgCPU
}

// reportCPU reports the CPU cost of the events: CPU seconds of Go and of
// PostgreSQL per run, events per CPU second, and the rate the work would
// reach on 2 otherwise idle cores (events / (CPU time / 2), an upper bound
// that assumes both cores stay busy).
func reportCPU(b *testing.B, events int64, goCPU, pgCPU time.Duration) {
	n := float64(b.N)
	b.ReportMetric(goCPU.Seconds()/n, "go-cpu-s/op")
	b.ReportMetric(pgCPU.Seconds()/n, "pg-cpu-s/op")
	if total := (goCPU + pgCPU).Seconds(); total > 0 {
		b.ReportMetric(float64(events)/total, "events/cpu-s")
		b.ReportMetric(float64(events)/(total/2), "events/s-2cores-cpu-bound")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU returns the CPU time of every backend connected to the test
// database, by pid.
func backendCPU(e *env) map[int]time.Duration {
	out := map[int]time.Duration{}
	if runtime.GOOS != "linux" {
		return out
	}
	rows, err := e.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
		AND backend_type = 'client backend'`)
	if err != nil {
		return out
	}
	var pids []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			pids = append(pids, pid)
		}
	}
	rows.Close()
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime 14, stime 15.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		// Clock ticks; USER_HZ is 100 on Linux.
		out[pid] = time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out
}
