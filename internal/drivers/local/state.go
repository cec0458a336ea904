package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ostia/ostia/internal/pki"
	"github.com/ostia/ostia/sagas/ports"
)

// stateVersion is the layout version of state.json.
const stateVersion = 1

// state is everything the driver made, persisted in <StateDir>/state.json
// so that a restarted worker (or a second worker on the same machine)
// finds it.
type state struct {
	Version int                             `json:"version"`
	Servers map[string]*serverRec           `json:"servers"`
	Groups  map[string]*ports.ServerGroup   `json:"server_groups"`
	Ports   map[string]*portRec             `json:"ports"`
	SGs     map[string]*ports.SecurityGroup `json:"security_groups"`
}

// serverRec is an amphora "server": an agent process, its directory and,
// in netns mode, its network namespace.
type serverRec struct {
	ports.Server
	GroupID string `json:"group_id,omitempty"`
	// AmphoraID is the id the agent runs as (its certificate's CN).
	AmphoraID string `json:"amphora_id"`
	Dir       string `json:"dir"`
	Netns     string `json:"netns,omitempty"`
	PID       int    `json:"pid,omitempty"`
}

// portRec is a port: an address of the VIP subnet and, while plugged in
// netns mode, a veth pair (HostIf on the bridge, NicIf handed to the agent).
type portRec struct {
	ports.Port
	HostIf string `json:"host_if,omitempty"`
	NicIf  string `json:"nic_if,omitempty"`
}

func newState() *state {
	return &state{Version: stateVersion, Servers: map[string]*serverRec{}, Groups: map[string]*ports.ServerGroup{},
		Ports: map[string]*portRec{}, SGs: map[string]*ports.SecurityGroup{}}
}

func (d *Driver) statePath() string { return filepath.Join(d.cfg.StateDir, "state.json") }

// lockFile takes the cross-process lock of the state directory (shared
// for reads, exclusive for changes) and returns its release.
func (d *Driver) lockFile(exclusive bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(d.cfg.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: open lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("local: lock state: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (d *Driver) load() (*state, error) {
	data, err := os.ReadFile(d.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("local: read state: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("local: parse %s: %w", d.statePath(), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("local: %s has layout version %d, this build reads %d", d.statePath(), st.Version, stateVersion)
	}
	fresh := newState()
	if st.Servers == nil {
		st.Servers = fresh.Servers
	}
	if st.Groups == nil {
		st.Groups = fresh.Groups
	}
	if st.Ports == nil {
		st.Ports = fresh.Ports
	}
	if st.SGs == nil {
		st.SGs = fresh.SGs
	}
	return st, nil
}

func (d *Driver) save(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("local: encode state: %w", err)
	}
	if err := pki.WriteFileAtomic(d.statePath(), data, 0o600); err != nil {
		return fmt.Errorf("local: save state: %w", err)
	}
	return nil
}

// update runs fn on the current state under the exclusive lock and saves
// the state when fn succeeds. Side effects fn makes happen under the lock,
// so concurrent operations (also of other processes) see each other.
func (d *Driver) update(ctx context.Context, op string, fn func(st *state) error) error {
	if err := d.fault(ctx, op); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	unlock, err := d.lockFile(true)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := d.load()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return d.save(st)
}

// view runs fn on the current state under the shared lock.
func (d *Driver) view(ctx context.Context, op string, fn func(st *state) error) error {
	if err := d.fault(ctx, op); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	unlock, err := d.lockFile(false)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := d.load()
	if err != nil {
		return err
	}
	return fn(st)
}
