package local

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cmdlineUses reports whether a command line (NUL-separated arguments)
// names dir or a path below it.
func cmdlineUses(cmdline []byte, dir string) bool {
	for _, arg := range bytes.Split(cmdline, []byte{0}) {
		a := string(arg)
		// Options such as -S <sock>,mode,600 or --x=<path> embed paths.
		if _, after, ok := strings.Cut(a, "="); ok && strings.HasPrefix(after, "/") {
			a = after
		}
		if a == dir || strings.HasPrefix(a, dir+"/") {
			return true
		}
	}
	return false
}

// zombie reports whether pid has exited but was not reaped yet.
func zombie(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// pid (comm) S ...; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return true
	}
	return data[i+2] == 'Z' || data[i+2] == 'X'
}

// processAlive reports whether pid is a live process started from dir.
func processAlive(pid int, dir string) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !cmdlineUses(cmdline, dir) {
		return false
	}
	return !zombie(pid)
}

// processesUsing lists the live processes whose command line names dir or
// a path below it (an amphora's agent, haproxy, keepalived and VRRP check
// scripts all do), except this process.
func processesUsing(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !cmdlineUses(cmdline, dir) || zombie(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}
