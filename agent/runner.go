package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// Runner runs the external programs the agent drives: short commands
// (validation, ip) and long-running daemons (haproxy, keepalived) that stay
// direct children of the agent. Tests use ExecRunner with the real binaries.
type Runner interface {
	// Run runs a command to completion and returns its combined output. A
	// non-zero exit is an error wrapping *exec.ExitError.
	Run(ctx context.Context, path string, args ...string) ([]byte, error)
	// Start starts a daemon in the foreground as a child process.
	Start(ctx context.Context, spec ProcessSpec) (Process, error)
}

// ProcessSpec describes a daemon to start.
type ProcessSpec struct {
	Path string
	Args []string
	Dir  string
	// Output receives the combined stdout and stderr.
	Output io.Writer
}

// Process is a started daemon.
type Process interface {
	Pid() int
	Signal(sig os.Signal) error
	// Done is closed once the process has exited and was reaped.
	Done() <-chan struct{}
	// ExitErr is the result of the wait, valid after Done is closed.
	ExitErr() error
}

// ExecRunner runs programs with os/exec. When NetNamespace is set every
// program is run inside that network namespace through
// `ip netns exec <ns>`, which execs the program, so daemons keep being
// direct children.
type ExecRunner struct {
	NetNamespace string
	// IPBin is the ip binary (default "ip").
	IPBin string
}

func (r *ExecRunner) argv(path string, args []string) (string, []string) {
	if r == nil || r.NetNamespace == "" {
		return path, args
	}
	ip := r.IPBin
	if ip == "" {
		ip = "ip"
	}
	return ip, append([]string{"netns", "exec", r.NetNamespace, path}, args...)
}

// Run implements Runner.
func (r *ExecRunner) Run(ctx context.Context, path string, args ...string) ([]byte, error) {
	p, a := r.argv(path, args)
	cmd := exec.CommandContext(ctx, p, a...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("run %s: %w", path, err)
	}
	return out.Bytes(), nil
}

// Start implements Runner. The process gets its own process group so that
// a terminal signal to the agent does not reach it; the agent stops its
// children itself. ctx only bounds the start, not the process lifetime.
func (r *ExecRunner) Start(ctx context.Context, spec ProcessSpec) (Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, a := r.argv(spec.Path, spec.Args)
	cmd := exec.Command(p, a...)
	cmd.Dir = spec.Dir
	out := spec.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	ep := &execProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		ep.err = cmd.Wait()
		close(ep.done)
	}()
	return ep, nil
}

type execProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *execProcess) Pid() int              { return p.cmd.Process.Pid }
func (p *execProcess) Done() <-chan struct{} { return p.done }
func (p *execProcess) ExitErr() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

func (p *execProcess) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %d: %w", p.Pid(), err)
	}
	return nil
}

func exited(p Process) bool {
	if p == nil {
		return true
	}
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// tailBuffer keeps the last max bytes written to it and forwards complete
// lines to a logger.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	written int64
	partial []byte
	logger  *slog.Logger
}

func newTailBuffer(max int, logger *slog.Logger) *tailBuffer {
	return &tailBuffer{max: max, logger: logger}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	t.written += int64(len(p))
	if t.logger != nil {
		t.partial = append(t.partial, p...)
		for {
			i := bytes.IndexByte(t.partial, '\n')
			if i < 0 {
				break
			}
			if line := bytes.TrimSpace(t.partial[:i]); len(line) > 0 {
				t.logger.Info(string(line))
			}
			t.partial = t.partial[i+1:]
		}
	}
	return len(p), nil
}

// mark returns the total bytes written so far.
func (t *tailBuffer) mark() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written
}

// since returns what was written after mark (as far as still buffered).
func (t *tailBuffer) since(mark int64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.written - mark
	if n <= 0 {
		return ""
	}
	if n > int64(len(t.buf)) {
		n = int64(len(t.buf))
	}
	return string(t.buf[int64(len(t.buf))-n:])
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
