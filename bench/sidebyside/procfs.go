package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// rssInfo is the resident memory of one process group, as `ps -o rss -g`
// reports it in bench.py (plain RSS summed over the group's processes;
// pages shared between uwsgi workers are counted once per worker, exactly
// as in results.md).
type rssInfo struct {
	PGID    int   `json:"pgid"`
	TotalKB int64 `json:"total_kb"`
	NProcs  int   `json:"nprocs"`
	PerProc []int `json:"per_proc_kb"`
}

// procStat is what we read of /proc/<pid>/stat.
type procStat struct {
	pid, pgrp int
	cpuTicks  int64 // utime + stime
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("bad stat for %d", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0]=state f[1]=ppid f[2]=pgrp … f[11]=utime f[12]=stime
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("short stat for %d", pid)
	}
	pgrp, _ := strconv.Atoi(f[2])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{pid: pid, pgrp: pgrp, cpuTicks: ut + st}, nil
}

func vmRSSKB(pid int) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// groupMembers lists the processes whose process group is pgid.
func groupMembers(pgid int) []procStat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.pgrp != pgid {
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

func groupRSS(pgid int) rssInfo {
	r := rssInfo{PGID: pgid}
	for _, p := range groupMembers(pgid) {
		kb := vmRSSKB(p.pid)
		if kb == 0 {
			continue // kernel thread or already gone
		}
		r.TotalKB += kb
		r.NProcs++
		r.PerProc = append(r.PerProc, int(kb))
	}
	return r
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports here.
const clockTicks = 100

// groupCPUSeconds is the user+system CPU time the group's live processes
// have used so far.
func groupCPUSeconds(pgid int) float64 {
	var t int64
	for _, p := range groupMembers(pgid) {
		t += p.cpuTicks
	}
	return float64(t) / clockTicks
}

// readPidsFile reads the anchor's run/pids ("name pid" per line).
func readPidsFile(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[1]); err == nil {
			out[f[0]] = pid
		}
	}
	return out, nil
}

// cpuTicks is a snapshot of the CPU time of some processes: pid → ticks.
type cpuTicks map[int]int64

// since is the CPU time used between an earlier snapshot and this one;
// processes that appeared in between count in full.
func (now cpuTicks) since(before cpuTicks) float64 {
	var t int64
	for pid, v := range now {
		t += v - before[pid]
	}
	return float64(t) / clockTicks
}

func ticksOf(pids []int) cpuTicks {
	out := cpuTicks{}
	for _, pid := range pids {
		if st, err := readStat(pid); err == nil {
			out[pid] = st.cpuTicks
		}
	}
	return out
}

// pidsByComm lists the processes whose command name (comm) is one of names.
func pidsByComm(names ...string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(b))
		for _, n := range names {
			if c == n {
				out = append(out, pid)
			}
		}
	}
	return out
}
