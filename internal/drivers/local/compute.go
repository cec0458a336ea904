package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ostia/ostia/internal/pki"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// ServerShutoff is reported for a server whose agent is no longer running
// (Nova's status of a stopped instance).
const ServerShutoff = "SHUTOFF"

// configDriveServerPEM is the config-drive file holding the amphora's
// server certificate and key (Octavia's path).
const configDriveServerPEM = "/etc/octavia/certs/server.pem"

func notFound(kind, id string) error {
	return fmt.Errorf("local: %s %s: %w", kind, id, ports.ErrNotFound)
}

// randomID is a short random id (server ids end up in haproxy's unix
// socket paths, which are limited to 97 bytes); callers check uniqueness.
func randomID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("local: random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// uniqueID returns prefix + a random id for which taken is false.
func uniqueID(prefix string, taken func(string) bool) (string, error) {
	for {
		id, err := randomID()
		if err != nil {
			return "", err
		}
		if !taken(prefix + id) {
			return prefix + id, nil
		}
	}
}

func contains(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func cloneServer(r *serverRec) ports.Server {
	s := r.Server
	s.Metadata = maps.Clone(r.Metadata)
	return s
}

// allocManagementIP returns the first free address of the management
// subnet (the network address excluded).
func (d *Driver) allocManagementIP(st *state) (string, error) {
	used := map[string]bool{}
	for _, s := range st.Servers {
		used[s.ManagementIP] = true
	}
	p := d.cfg.ManagementSubnet
	for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
		if !used[a.String()] && a.As4()[3] != 255 && a.As4()[3] != 0 {
			return a.String(), nil
		}
	}
	return "", saga.Permanent(fmt.Errorf("local: management subnet %s is exhausted", p))
}

// CreateServer implements ports.Compute: it starts an amphora agent.
func (d *Driver) CreateServer(ctx context.Context, spec ports.ServerSpec) (ports.Server, error) {
	var out ports.Server
	err := d.update(ctx, "CreateServer", func(st *state) error {
		if spec.ServerGroupID != "" {
			if _, ok := st.Groups[spec.ServerGroupID]; !ok {
				return saga.Permanent(notFound("server group", spec.ServerGroupID))
			}
		}
		pem, ok := spec.ConfigDrive[configDriveServerPEM]
		if !ok {
			return saga.Permanent(fmt.Errorf("local: server %s: no %s on the config drive", spec.Name, configDriveServerPEM))
		}
		id, err := uniqueID("", func(id string) bool { return st.Servers[id] != nil })
		if err != nil {
			return err
		}
		mgmt, err := d.allocManagementIP(st)
		if err != nil {
			return err
		}
		ampID := spec.Metadata[ports.TagAmphoraID]
		if ampID == "" {
			ampID = id
		}
		zone := spec.Zone
		if zone == "" {
			zone = "local"
		}
		rec := &serverRec{Server: ports.Server{ID: id, Name: spec.Name, Status: ports.ServerBuild,
			Metadata: maps.Clone(spec.Metadata), ManagementIP: mgmt, Zone: zone, ImageID: "local:" + spec.ImageTag,
			FlavorID: spec.FlavorID}, GroupID: spec.ServerGroupID, AmphoraID: ampID, Dir: d.ServerDir(id)}
		if d.mode == ModeNetns {
			rec.Netns = netnsName(id)
		}
		if err := d.boot(ctx, rec, pem); err != nil {
			if cerr := d.teardown(context.WithoutCancel(ctx), rec); cerr != nil {
				err = fmt.Errorf("%w (cleanup: %v)", err, cerr)
			}
			return err
		}
		st.Servers[id] = rec
		out = cloneServer(rec)
		d.log.InfoContext(ctx, "amphora started", "server_id", id, "amphora_id", ampID, "management_ip", mgmt,
			"netns", rec.Netns, "pid", rec.PID)
		return nil
	})
	return out, err
}

// boot prepares the amphora's directory and namespace and starts its agent.
func (d *Driver) boot(ctx context.Context, rec *serverRec, serverPEM []byte) error {
	etc := filepath.Join(rec.Dir, "etc")
	if err := os.MkdirAll(etc, 0o700); err != nil {
		return saga.Transient(fmt.Errorf("local: create %s: %w", etc, err))
	}
	files := map[string][]byte{"server.pem": serverPEM, "client_ca.pem": d.cfg.ClientCAPEM}
	if len(d.cfg.HeartbeatTargets) > 0 {
		files["heartbeat.key"] = []byte(d.cfg.HeartbeatKey + "\n")
	}
	for name, data := range files {
		if err := pki.WriteFileAtomic(filepath.Join(etc, name), data, 0o600); err != nil {
			return saga.Transient(fmt.Errorf("local: %w", err))
		}
	}
	if rec.Netns != "" {
		if _, err := d.ip(ctx, "netns", "add", rec.Netns); err != nil && !strings.Contains(err.Error(), "File exists") {
			return saga.Transient(fmt.Errorf("local: %w", err))
		}
		if _, err := d.ip(ctx, "-n", rec.Netns, "link", "set", "lo", "up"); err != nil {
			return saga.Transient(fmt.Errorf("local: %w", err))
		}
		// haproxy of a BACKUP amphora binds the VIP it does not hold yet
		// (Octavia's amphora image sets the same).
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", rec.Netns, "sh", "-c",
			"echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind; echo 1 > /proc/sys/net/ipv6/ip_nonlocal_bind")
		if out, err := cmd.CombinedOutput(); err != nil {
			return saga.Transient(fmt.Errorf("local: sysctl in %s: %w: %s", rec.Netns, err, trimOutput(out)))
		}
	}
	args := []string{
		"-listen", net.JoinHostPort(rec.ManagementIP, strconv.Itoa(d.cfg.AgentPort)),
		"-cert", filepath.Join(etc, "server.pem"), "-key", filepath.Join(etc, "server.pem"),
		"-client-ca", filepath.Join(etc, "client_ca.pem"),
		"-base-dir", rec.Dir,
		"-amphora-id", rec.AmphoraID,
		"-haproxy", d.cfg.HAProxyBinary, "-keepalived", d.cfg.KeepalivedBinary,
	}
	if rec.Netns != "" {
		args = append(args, "-netns", rec.Netns)
	} else {
		args = append(args, "-plumbing", "none")
	}
	if len(d.cfg.HeartbeatTargets) > 0 {
		args = append(args, "-heartbeat-targets", strings.Join(d.cfg.HeartbeatTargets, ","),
			"-heartbeat-key-file", filepath.Join(etc, "heartbeat.key"))
		if d.cfg.HeartbeatInterval > 0 {
			args = append(args, "-heartbeat-interval", d.cfg.HeartbeatInterval.String())
		}
	}
	logf, err := os.OpenFile(filepath.Join(rec.Dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return saga.Transient(fmt.Errorf("local: agent log: %w", err))
	}
	defer logf.Close()
	// Not CommandContext: the amphora outlives the call (and the worker).
	cmd := exec.Command(d.cfg.AgentBinary, args...)
	cmd.Dir = rec.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a terminal's Ctrl-C to the worker does not
	// reach the amphorae.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return saga.Permanent(fmt.Errorf("local: start agent: %w", err))
	}
	rec.PID = cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it while this process lives
	return nil
}

// agentLogTail returns the end of an amphora's agent log.
func agentLogTail(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "agent.log"))
	if err != nil {
		return ""
	}
	return trimOutput(data)
}

// FindServers implements ports.Compute.
func (d *Driver) FindServers(ctx context.Context, name string, metadata map[string]string) ([]ports.Server, error) {
	var out []ports.Server
	err := d.view(ctx, "FindServers", func(st *state) error {
		for _, s := range st.Servers {
			if (name == "" || s.Name == name) && contains(s.Metadata, metadata) {
				out = append(out, cloneServer(s))
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// GetServer implements ports.Compute. A server is BUILD until its agent
// accepts connections, then ACTIVE; ERROR when the agent exited during the
// boot, SHUTOFF when it exited later.
func (d *Driver) GetServer(ctx context.Context, id string) (ports.Server, error) {
	var out ports.Server
	err := d.update(ctx, "GetServer", func(st *state) error {
		rec, ok := st.Servers[id]
		if !ok {
			return notFound("server", id)
		}
		alive := processAlive(rec.PID, rec.Dir)
		switch {
		case rec.Status == ports.ServerBuild && !alive:
			rec.Status, rec.Fault = ports.ServerError, "agent exited during boot: "+agentLogTail(rec.Dir)
		case rec.Status == ports.ServerBuild:
			addr := net.JoinHostPort(rec.ManagementIP, strconv.Itoa(d.cfg.AgentPort))
			c, err := (&net.Dialer{Timeout: 300 * time.Millisecond}).DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
				rec.Status = ports.ServerActive
			}
		case rec.Status == ports.ServerActive && !alive:
			rec.Status, rec.Fault = ServerShutoff, "agent is not running: "+agentLogTail(rec.Dir)
		}
		out = cloneServer(rec)
		return nil
	})
	return out, err
}

// DeleteServer implements ports.Compute: the agent is stopped (it stops
// haproxy and keepalived), leftover processes are killed, the server's
// ports are unplugged, its namespace and directory removed. A missing
// server is fine.
func (d *Driver) DeleteServer(ctx context.Context, id string) error {
	return d.update(ctx, "DeleteServer", func(st *state) error {
		rec, ok := st.Servers[id]
		if !ok {
			rec = &serverRec{Server: ports.Server{ID: id}, Dir: d.ServerDir(id)}
			if d.mode == ModeNetns {
				rec.Netns = netnsName(id)
			}
			if _, err := os.Stat(rec.Dir); errors.Is(err, fs.ErrNotExist) {
				return nil
			}
		}
		for _, p := range st.Ports {
			if p.DeviceID != id {
				continue
			}
			if err := d.unplug(ctx, p); err != nil {
				return err
			}
		}
		if err := d.teardown(ctx, rec); err != nil {
			return err
		}
		delete(st.Servers, id)
		d.log.InfoContext(ctx, "amphora deleted", "server_id", id, "amphora_id", rec.AmphoraID)
		return nil
	})
}

// teardown stops every process of an amphora and removes its namespace
// and directory.
func (d *Driver) teardown(ctx context.Context, rec *serverRec) error {
	if processAlive(rec.PID, rec.Dir) {
		_ = syscall.Kill(rec.PID, syscall.SIGTERM)
		deadline := time.Now().Add(d.cfg.StopTimeout)
		for processAlive(rec.PID, rec.Dir) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	pids := processesUsing(rec.Dir)
	if rec.Netns != "" {
		if out, err := d.ip(ctx, "netns", "pids", rec.Netns); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
		}
	}
	for _, pid := range pids {
		d.log.WarnContext(ctx, "killing leftover amphora process", "server_id", rec.ID, "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processesUsing(rec.Dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := processesUsing(rec.Dir); len(left) > 0 {
		return saga.Transient(fmt.Errorf("local: processes %v of server %s survived SIGKILL", left, rec.ID))
	}
	if rec.Netns != "" {
		if _, err := d.ip(ctx, "netns", "del", rec.Netns); err != nil && !strings.Contains(err.Error(), "No such file") {
			return saga.Transient(fmt.Errorf("local: %w", err))
		}
	}
	if err := os.RemoveAll(rec.Dir); err != nil {
		return saga.Transient(fmt.Errorf("local: remove %s: %w", rec.Dir, err))
	}
	return nil
}

// CreateServerGroup implements ports.Compute (bookkeeping: one machine
// has no affinity to respect).
func (d *Driver) CreateServerGroup(ctx context.Context, name, policy string) (ports.ServerGroup, error) {
	var out ports.ServerGroup
	err := d.update(ctx, "CreateServerGroup", func(st *state) error {
		id, err := uniqueID("group-", func(id string) bool { return st.Groups[id] != nil })
		if err != nil {
			return err
		}
		out = ports.ServerGroup{ID: id, Name: name, Policy: policy}
		st.Groups[out.ID] = &out
		return nil
	})
	return out, err
}

// FindServerGroups implements ports.Compute.
func (d *Driver) FindServerGroups(ctx context.Context, name string) ([]ports.ServerGroup, error) {
	var out []ports.ServerGroup
	err := d.view(ctx, "FindServerGroups", func(st *state) error {
		for _, g := range st.Groups {
			if g.Name == name {
				out = append(out, *g)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// DeleteServerGroup implements ports.Compute.
func (d *Driver) DeleteServerGroup(ctx context.Context, id string) error {
	return d.update(ctx, "DeleteServerGroup", func(st *state) error {
		delete(st.Groups, id)
		return nil
	})
}

// sweep removes what a crash left behind: amphora directories (with their
// processes and namespaces) that have no server record.
func (d *Driver) sweep(ctx context.Context) error {
	return d.update(ctx, "Sweep", func(st *state) error {
		entries, err := os.ReadDir(filepath.Join(d.cfg.StateDir, "a"))
		if err != nil {
			return fmt.Errorf("local: %w", err)
		}
		var errs []error
		for _, e := range entries {
			if !e.IsDir() || st.Servers[e.Name()] != nil {
				continue
			}
			rec := &serverRec{Server: ports.Server{ID: e.Name()}, Dir: d.ServerDir(e.Name())}
			if d.mode == ModeNetns {
				rec.Netns = netnsName(e.Name())
			}
			d.log.WarnContext(ctx, "removing an amphora without a record", "server_id", e.Name())
			if err := d.teardown(ctx, rec); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}
