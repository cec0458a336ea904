package agent

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ostia/ostia/internal/pki"
	"github.com/ostia/ostia/templates"
)

// lbState is the agent's view of one load balancer. mu serialises every
// operation on the load balancer (upload, start, reload, stop, delete).
type lbState struct {
	mu  chanMutex
	id  string
	dir string

	loaded bool
	meta   lbMeta

	pmu        sync.Mutex // guards proc for readers without mu
	proc       Process
	out        *tailBuffer
	runningGen uint64
	stopping   bool
	crashed    bool
}

// lbMeta is persisted as state.json next to haproxy.cfg.
type lbMeta struct {
	// AcceptedGeneration is the highest generation ever stored; older
	// uploads are refused.
	AcceptedGeneration uint64 `json:"accepted_generation"`
	// ConfigGeneration and ConfigMD5 describe haproxy.cfg.
	ConfigGeneration uint64 `json:"config_generation"`
	ConfigMD5        string `json:"config_md5"`
	// LastGoodGeneration describes haproxy.cfg.last-good.
	LastGoodGeneration uint64 `json:"last_good_generation"`
	AmphoraID          string `json:"amphora_id,omitempty"`
}

// chanMutex is a mutex whose Lock honours a context.
type chanMutex struct{ ch chan struct{} }

func (m *chanMutex) init() { m.ch = make(chan struct{}, 1) }

func (m *chanMutex) LockCtx(ctx context.Context) error {
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for load balancer lock: %w", ctx.Err())
	}
}

func (m *chanMutex) Lock()   { m.ch <- struct{}{} }
func (m *chanMutex) Unlock() { <-m.ch }

func (lb *lbState) cfgPath() string      { return filepath.Join(lb.dir, "haproxy.cfg") }
func (lb *lbState) newPath() string      { return filepath.Join(lb.dir, "haproxy.cfg.new") }
func (lb *lbState) lastGoodPath() string { return filepath.Join(lb.dir, "haproxy.cfg.last-good") }
func (lb *lbState) metaPath() string     { return filepath.Join(lb.dir, "state.json") }
func (lb *lbState) pidPath() string      { return filepath.Join(lb.dir, lb.id+".pid") }
func (lb *lbState) masterSock() string   { return filepath.Join(lb.dir, "master.sock") }
func (lb *lbState) stateFile() string    { return filepath.Join(lb.dir, "servers-state") }

func (lb *lbState) running() bool { return lb.proc != nil && !exited(lb.proc) }

func (lb *lbState) setProc(p Process) {
	lb.pmu.Lock()
	lb.proc = p
	lb.pmu.Unlock()
}

// procSnapshot may be called without holding mu.
func (lb *lbState) procSnapshot() Process {
	lb.pmu.Lock()
	defer lb.pmu.Unlock()
	return lb.proc
}

// lb returns the state of a load balancer, creating the in-memory entry.
func (a *Agent) lb(id string) (*lbState, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: invalid load balancer id %q", errInvalid, id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lb, ok := a.lbs[id]
	if !ok {
		lb = &lbState{id: id, dir: filepath.Join(a.cfg.BaseDir, id)}
		lb.mu.init()
		a.lbs[id] = lb
	}
	return lb, nil
}

// lockLB returns the locked state of a load balancer with its metadata
// loaded from disk.
func (a *Agent) lockLB(ctx context.Context, id string) (*lbState, error) {
	lb, err := a.lb(id)
	if err != nil {
		return nil, err
	}
	if err := lb.mu.LockCtx(ctx); err != nil {
		return nil, err
	}
	if !lb.loaded {
		data, err := os.ReadFile(lb.metaPath())
		switch {
		case err == nil:
			if err := json.Unmarshal(data, &lb.meta); err != nil {
				lb.mu.Unlock()
				return nil, fmt.Errorf("load %s: %w", lb.metaPath(), err)
			}
		case !errors.Is(err, fs.ErrNotExist):
			lb.mu.Unlock()
			return nil, fmt.Errorf("load state of %s: %w", id, err)
		}
		lb.loaded = true
	}
	return lb, nil
}

func (lb *lbState) saveMeta() error {
	data, err := json.MarshalIndent(lb.meta, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return pki.WriteFileAtomic(lb.metaPath(), data, 0o644)
}

func (lb *lbState) hasConfig() bool {
	_, err := os.Stat(lb.cfgPath())
	return err == nil
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// haproxyState summarises the process state of a locked load balancer.
type haproxyState struct {
	Running    bool
	Pid        int
	RunningGen uint64
	StoredGen  uint64
	Details    string
}

func (lb *lbState) state(details string) haproxyState {
	st := haproxyState{Running: lb.running(), StoredGen: lb.meta.ConfigGeneration, Details: details}
	if st.Running {
		st.Pid = lb.proc.Pid()
		st.RunningGen = lb.runningGen
	}
	return st
}

// validateHAProxy checks a configuration file with `haproxy -c`.
func (a *Agent) validateHAProxy(ctx context.Context, path, amphoraID string) (string, error) {
	args := []string{"-c", "-f", path}
	if amphoraID != "" {
		args = append(args, "-L", templates.PeerName(amphoraID))
	}
	out, err := a.runner.Run(ctx, a.cfg.HAProxyBin, args...)
	if err != nil {
		if ctx.Err() != nil {
			return string(out), fmt.Errorf("validate haproxy config: %w", ctx.Err())
		}
		if exitCode(err) > 0 {
			return string(out), fmt.Errorf("%w: haproxy rejected the configuration: %s", errInvalid, strings.TrimSpace(string(out)))
		}
		return string(out), fmt.Errorf("validate haproxy config: %w", err)
	}
	return string(out), nil
}

// uploadHAProxy validates and stores a configuration (caller holds lb.mu).
func (a *Agent) uploadHAProxy(ctx context.Context, lb *lbState, amphoraID, config string, gen uint64) (md5sum, output string, err error) {
	if gen == 0 {
		return "", "", fmt.Errorf("%w: generation must be > 0", errInvalid)
	}
	if amphoraID != "" && a.cfg.AmphoraID != "" && amphoraID != a.cfg.AmphoraID {
		return "", "", fmt.Errorf("%w: configuration is for amphora %s, this is %s", errInvalid, amphoraID, a.cfg.AmphoraID)
	}
	if amphoraID == "" {
		amphoraID = a.cfg.AmphoraID
	}
	sum := md5Hex([]byte(config))
	switch {
	case gen < lb.meta.AcceptedGeneration:
		return "", "", fmt.Errorf("%w: generation %d is older than stored generation %d", errStale, gen, lb.meta.AcceptedGeneration)
	case gen == lb.meta.AcceptedGeneration:
		if sum == lb.meta.ConfigMD5 && lb.meta.ConfigGeneration == gen && lb.hasConfig() {
			return sum, "configuration unchanged", nil
		}
		return "", "", fmt.Errorf("%w: generation %d was already used for a different configuration", errStale, gen)
	}
	if err := os.MkdirAll(lb.dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create %s: %w", lb.dir, err)
	}
	if err := pki.WriteFileAtomic(lb.newPath(), []byte(config), 0o644); err != nil {
		return "", "", err
	}
	output, err = a.validateHAProxy(ctx, lb.newPath(), amphoraID)
	if err != nil {
		_ = os.Rename(lb.newPath(), lb.newPath()+"-failed")
		return "", output, err
	}
	if err := os.Rename(lb.newPath(), lb.cfgPath()); err != nil {
		return "", output, fmt.Errorf("install haproxy config: %w", err)
	}
	lb.meta.AcceptedGeneration = gen
	lb.meta.ConfigGeneration = gen
	lb.meta.ConfigMD5 = sum
	lb.meta.AmphoraID = amphoraID
	if err := lb.saveMeta(); err != nil {
		return "", output, err
	}
	a.log.InfoContext(ctx, "stored haproxy configuration", "lb", lb.id, "generation", gen, "md5", sum)
	return sum, output, nil
}

func (a *Agent) haproxyArgs(lb *lbState) []string {
	args := []string{"-W", "-db", "-S", lb.masterSock() + ",mode,600", "-f", lb.cfgPath(), "-p", lb.pidPath()}
	if lb.meta.AmphoraID != "" {
		args = append(args, "-L", templates.PeerName(lb.meta.AmphoraID))
	}
	return args
}

// startHAProxyLocked starts haproxy with the stored configuration. If it
// fails and a different last good configuration exists, that one is
// restored and started, and the original failure is returned.
func (a *Agent) startHAProxyLocked(ctx context.Context, lb *lbState) (string, error) {
	if lb.running() {
		return "already running", nil
	}
	if !lb.hasConfig() {
		return "", fmt.Errorf("%w: no haproxy configuration for load balancer %s", errNoConfig, lb.id)
	}
	err := a.spawnHAProxy(ctx, lb)
	if err == nil {
		a.markGood(ctx, lb)
		a.updateVRRPCheck(ctx)
		return "haproxy started", nil
	}
	if rbErr := a.restoreLastGood(lb); rbErr != nil {
		return "", fmt.Errorf("%w (no rollback: %v)", err, rbErr)
	}
	if err2 := a.spawnHAProxy(ctx, lb); err2 != nil {
		return "", fmt.Errorf("%w; the last good configuration failed too: %v", err, err2)
	}
	lb.runningGen = lb.meta.ConfigGeneration
	a.updateVRRPCheck(ctx)
	return "", fmt.Errorf("%w; rolled back to generation %d", err, lb.meta.ConfigGeneration)
}

func (a *Agent) spawnHAProxy(ctx context.Context, lb *lbState) error {
	if a.isClosed() {
		return errors.New("agent is shutting down")
	}
	_ = os.Remove(lb.masterSock())
	if lb.out == nil {
		lb.out = newTailBuffer(64<<10, a.log.With("lb", lb.id, "process", "haproxy"))
	}
	mark := lb.out.mark()
	proc, err := a.runner.Start(ctx, ProcessSpec{Path: a.cfg.HAProxyBin, Args: a.haproxyArgs(lb), Dir: lb.dir, Output: lb.out})
	if err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	lb.setProc(proc)
	lb.stopping, lb.crashed = false, false
	go a.watch(lb, proc)

	ctx, cancel := context.WithTimeout(ctx, a.cfg.StartTimeout)
	defer cancel()
	for {
		info, err := masterProc(ctx, lb.masterSock())
		if err == nil && info.workers > 0 {
			a.log.InfoContext(ctx, "haproxy started", "lb", lb.id, "pid", proc.Pid(), "generation", lb.meta.ConfigGeneration)
			lb.runningGen = lb.meta.ConfigGeneration
			return nil
		}
		select {
		case <-proc.Done():
			return fmt.Errorf("haproxy exited during start (%v): %s", proc.ExitErr(), strings.TrimSpace(lb.out.since(mark)))
		case <-ctx.Done():
			_ = a.killAndWait(proc, time.Second)
			return fmt.Errorf("haproxy did not become ready: %w: %s", ctx.Err(), strings.TrimSpace(lb.out.since(mark)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watch logs an unexpected exit of haproxy.
func (a *Agent) watch(lb *lbState, proc Process) {
	<-proc.Done()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.proc != proc || lb.stopping {
		return
	}
	lb.crashed = true
	a.log.Error("haproxy exited unexpectedly", "lb", lb.id, "pid", proc.Pid(), "err", proc.ExitErr())
}

// markGood records the running configuration as the last good one.
func (a *Agent) markGood(ctx context.Context, lb *lbState) {
	data, err := os.ReadFile(lb.cfgPath())
	if err == nil {
		err = pki.WriteFileAtomic(lb.lastGoodPath(), data, 0o644)
	}
	if err == nil {
		lb.meta.LastGoodGeneration = lb.meta.ConfigGeneration
		err = lb.saveMeta()
	}
	if err != nil {
		a.log.WarnContext(ctx, "cannot record last good haproxy configuration", "lb", lb.id, "err", err)
	}
}

// restoreLastGood puts haproxy.cfg.last-good back in place, keeping the
// failed configuration as haproxy.cfg.failed.
func (a *Agent) restoreLastGood(lb *lbState) error {
	good, err := os.ReadFile(lb.lastGoodPath())
	if err != nil {
		return fmt.Errorf("no last good configuration: %w", err)
	}
	if lb.meta.ConfigMD5 == md5Hex(good) {
		return errors.New("the last good configuration is the failing one")
	}
	if err := os.Rename(lb.cfgPath(), lb.cfgPath()+".failed"); err != nil {
		return fmt.Errorf("keep failed configuration: %w", err)
	}
	if err := pki.WriteFileAtomic(lb.cfgPath(), good, 0o644); err != nil {
		return err
	}
	lb.meta.ConfigGeneration = lb.meta.LastGoodGeneration
	lb.meta.ConfigMD5 = md5Hex(good)
	return lb.saveMeta()
}

// reloadHAProxyLocked applies haproxy.cfg to the running haproxy, or
// starts it. On failure the last good configuration is restored and
// reloaded.
func (a *Agent) reloadHAProxyLocked(ctx context.Context, lb *lbState) (string, error) {
	if !lb.hasConfig() {
		return "", fmt.Errorf("%w: no haproxy configuration for load balancer %s", errNoConfig, lb.id)
	}
	if !lb.running() {
		return a.startHAProxyLocked(ctx, lb)
	}
	if lb.runningGen == lb.meta.ConfigGeneration && lb.runningGen != 0 {
		// Still reload: certificates referenced by the config may have changed.
		a.log.DebugContext(ctx, "reloading unchanged configuration", "lb", lb.id)
	}
	a.saveServerState(ctx, lb)
	err := a.signalReload(ctx, lb)
	if err == nil {
		lb.runningGen = lb.meta.ConfigGeneration
		a.markGood(ctx, lb)
		a.updateVRRPCheck(ctx)
		return fmt.Sprintf("haproxy reloaded with generation %d", lb.runningGen), nil
	}
	failedGen := lb.meta.ConfigGeneration
	a.log.ErrorContext(ctx, "haproxy reload failed, rolling back", "lb", lb.id, "generation", failedGen, "err", err)
	if rbErr := a.restoreLastGood(lb); rbErr != nil {
		return "", fmt.Errorf("reload of generation %d failed: %w (no rollback: %v)", failedGen, err, rbErr)
	}
	if !lb.running() {
		if err2 := a.spawnHAProxy(ctx, lb); err2 != nil {
			return "", fmt.Errorf("reload of generation %d failed: %w; restarting with the last good configuration failed: %v", failedGen, err, err2)
		}
	} else if err2 := a.signalReload(ctx, lb); err2 != nil {
		return "", fmt.Errorf("reload of generation %d failed: %w; reloading the last good configuration failed: %v", failedGen, err, err2)
	}
	lb.runningGen = lb.meta.ConfigGeneration
	return "", fmt.Errorf("reload of generation %d failed, rolled back to generation %d: %w", failedGen, lb.runningGen, err)
}

// signalReload sends SIGUSR2 to the master and waits until the master
// reports the outcome of the reload in `show proc`.
func (a *Agent) signalReload(ctx context.Context, lb *lbState) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ReloadTimeout)
	defer cancel()
	before, err := masterProc(ctx, lb.masterSock())
	if err != nil {
		return fmt.Errorf("read master state: %w", err)
	}
	mark := lb.out.mark()
	if err := lb.proc.Signal(syscall.SIGUSR2); err != nil {
		return fmt.Errorf("signal haproxy master: %w", err)
	}
	for {
		info, err := masterProc(ctx, lb.masterSock())
		if err == nil && info.reloads > before.reloads {
			if info.failed > 0 {
				return fmt.Errorf("haproxy refused the configuration: %s", strings.TrimSpace(lb.out.since(mark)))
			}
			if info.workers > 0 {
				a.log.InfoContext(ctx, "haproxy reloaded", "lb", lb.id, "generation", lb.meta.ConfigGeneration)
				return nil
			}
		}
		select {
		case <-lb.proc.Done():
			return fmt.Errorf("haproxy exited during reload (%v): %s", lb.proc.ExitErr(), strings.TrimSpace(lb.out.since(mark)))
		case <-ctx.Done():
			return fmt.Errorf("haproxy reload not confirmed: %w: %s", ctx.Err(), strings.TrimSpace(lb.out.since(mark)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// saveServerState dumps `show servers state` into the server-state file so
// a reload keeps server states (best effort).
func (a *Agent) saveServerState(ctx context.Context, lb *lbState) {
	sock := a.statsSocketPath(lb)
	out, err := socketCommand(ctx, sock, "show servers state", false)
	if err != nil || !strings.HasPrefix(out, "1") {
		a.log.DebugContext(ctx, "server state not saved", "lb", lb.id, "err", err)
		return
	}
	if err := pki.WriteFileAtomic(lb.stateFile(), []byte(out), 0o644); err != nil {
		a.log.WarnContext(ctx, "server state not saved", "lb", lb.id, "err", err)
	}
}

// stopHAProxyLocked stops haproxy (SIGTERM to the master, SIGKILL after
// StopTimeout) and waits for it.
func (a *Agent) stopHAProxyLocked(ctx context.Context, lb *lbState) error {
	if !lb.running() {
		lb.setProc(nil)
		return nil
	}
	lb.stopping = true
	proc := lb.proc
	_ = proc.Signal(syscall.SIGTERM)
	timeout := a.cfg.StopTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), 100*time.Millisecond)
	}
	select {
	case <-proc.Done():
	case <-time.After(timeout):
		a.log.WarnContext(ctx, "haproxy did not stop, killing it", "lb", lb.id, "pid", proc.Pid())
		if err := a.killAndWait(proc, 5*time.Second); err != nil {
			return err
		}
	}
	lb.setProc(nil)
	lb.runningGen = 0
	_ = os.Remove(lb.pidPath())
	a.log.InfoContext(ctx, "haproxy stopped", "lb", lb.id)
	a.updateVRRPCheck(ctx)
	return nil
}

func (a *Agent) killAndWait(proc Process, wait time.Duration) error {
	_ = proc.Signal(syscall.SIGKILL)
	select {
	case <-proc.Done():
		return nil
	case <-time.After(wait):
		return fmt.Errorf("process %d did not exit after SIGKILL", proc.Pid())
	}
}

// deleteLBLocked stops haproxy and removes every file of the load balancer.
func (a *Agent) deleteLBLocked(ctx context.Context, lb *lbState) error {
	if err := a.stopHAProxyLocked(ctx, lb); err != nil {
		return err
	}
	sock := a.statsSocketPath(lb)
	for _, p := range []string{lb.dir, filepath.Join(a.cfg.CertDir, lb.id)} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	_ = os.Remove(sock)
	// The in-memory entry stays (callers may be waiting on its lock); a
	// later upload starts again from generation 0.
	lb.meta = lbMeta{}
	lb.crashed = false
	return nil
}

// statsSocketPath reads the stats socket from the `stats socket` line of
// haproxy.cfg, defaulting to <BaseDir>/<lb_id>.sock (Octavia's layout).
func (a *Agent) statsSocketPath(lb *lbState) string {
	def := filepath.Join(a.cfg.BaseDir, lb.id+".sock")
	f, err := os.Open(lb.cfgPath())
	if err != nil {
		return def
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "stats" && fields[1] == "socket" {
			addr := fields[2]
			if strings.HasPrefix(addr, "unix@") {
				addr = strings.TrimPrefix(addr, "unix@")
			}
			if strings.HasPrefix(addr, "/") {
				return addr
			}
		}
	}
	return def
}

// frontend is a frontend section of haproxy.cfg.
type frontend struct {
	name string
	mode string
}

// parseFrontends lists the frontends of a configuration with their mode.
func parseFrontends(cfg string) []frontend {
	var out []frontend
	cur := -1
	sc := bufio.NewScanner(strings.NewReader(cfg))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		indented := sc.Text() != "" && (sc.Text()[0] == ' ' || sc.Text()[0] == '\t')
		if !indented {
			cur = -1
			if fields[0] == "frontend" && len(fields) > 1 && fields[1] != templates.PrometheusInternalFrontend {
				out = append(out, frontend{name: fields[1], mode: "tcp"})
				cur = len(out) - 1
			}
			continue
		}
		if cur >= 0 && fields[0] == "mode" && len(fields) > 1 {
			out[cur].mode = fields[1]
		}
	}
	return out
}

// listLBIDs returns the load balancers that have a stored configuration.
func (a *Agent) listLBIDs() ([]string, error) {
	entries, err := os.ReadDir(a.cfg.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", a.cfg.BaseDir, err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(a.cfg.BaseDir, e.Name(), "haproxy.cfg")); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// masterInfo is the parsed `show proc` of the haproxy master CLI.
type masterInfo struct {
	reloads int
	failed  int
	workers int
}

func masterProc(ctx context.Context, sock string) (masterInfo, error) {
	out, err := socketCommand(ctx, sock, "show proc", true)
	if err != nil {
		return masterInfo{}, err
	}
	return parseShowProc(out)
}

// parseShowProc parses haproxy 2.x `show proc` output:
//
//	#<PID>  <type>  <reloads>  <uptime>  <version>
//	1162    master  5 [failed: 0]  ...
//	# workers
//	1271    worker  0  ...
//	# old workers
//	...
func parseShowProc(out string) (masterInfo, error) {
	var info masterInfo
	section := ""
	sawMaster := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		switch {
		case f[1] == "master":
			sawMaster = true
			info.reloads, _ = strconv.Atoi(f[2])
			if i := strings.Index(line, "[failed:"); i >= 0 {
				rest := strings.TrimSpace(line[i+len("[failed:"):])
				if j := strings.Index(rest, "]"); j >= 0 {
					info.failed, _ = strconv.Atoi(strings.TrimSpace(rest[:j]))
				}
			}
		case f[1] == "worker" && section == "workers":
			info.workers++
		}
	}
	if !sawMaster {
		return info, fmt.Errorf("unexpected show proc output: %q", out)
	}
	return info, nil
}
