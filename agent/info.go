package agent

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

var (
	haproxyVersionRe    = regexp.MustCompile(`(?i)HA-?Proxy version (\S+)`)
	keepalivedVersionRe = regexp.MustCompile(`Keepalived v(\S+)`)
)

// versions returns the haproxy and keepalived versions, probed once.
func (a *Agent) versions(ctx context.Context) (string, string) {
	a.versionsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if out, err := a.runner.Run(ctx, a.cfg.HAProxyBin, "-v"); err == nil {
			if m := haproxyVersionRe.FindStringSubmatch(string(out)); m != nil {
				a.haproxyVer = m[1]
			}
		} else {
			a.log.WarnContext(ctx, "cannot read haproxy version", "err", err)
		}
		// keepalived -v prints to stderr and may exit non-zero on old versions.
		out, _ := a.runner.Run(ctx, a.cfg.KeepalivedBin, "-v")
		if m := keepalivedVersionRe.FindStringSubmatch(string(out)); m != nil {
			a.keepalivedV = m[1]
		}
	})
	return a.haproxyVer, a.keepalivedV
}

func (a *Agent) hostname() string {
	if a.cfg.Hostname != "" {
		return a.cfg.Hostname
	}
	h, _ := os.Hostname()
	return h
}

func readLoadAvg() []float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(data))
	out := make([]float64, 0, 3)
	for i := 0; i < 3 && i < len(f); i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		out = append(out, v)
	}
	return out
}

func readMemInfo() *agentv1.MemoryDetails {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	vals := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, _ := strconv.ParseUint(fields[0], 10, 64)
		vals[name] = v
	}
	swapUsed := uint64(0)
	if vals["SwapTotal"] > vals["SwapFree"] {
		swapUsed = vals["SwapTotal"] - vals["SwapFree"]
	}
	return &agentv1.MemoryDetails{
		Total: vals["MemTotal"], Free: vals["MemFree"], Available: vals["MemAvailable"],
		Buffers: vals["Buffers"], Cached: vals["Cached"], Shared: vals["Shmem"], Slab: vals["Slab"],
		SwapUsed: swapUsed,
	}
}

func diskUsage(path string) *agentv1.DiskDetails {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return nil
	}
	bs := uint64(st.Bsize)
	return &agentv1.DiskDetails{Used: (st.Blocks - st.Bfree) * bs, Available: st.Bavail * bs}
}
