package agent

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// socketCommand sends one command to a haproxy stats socket or master CLI
// and returns the answer. The master CLI keeps the connection open, so
// "; quit" is appended there.
func socketCommand(ctx context.Context, path, cmd string, master bool) (string, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if master {
		cmd += "; quit"
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("send %q to %s: %w", cmd, path, err)
	}
	data, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return string(data), fmt.Errorf("read %q answer from %s: %w", cmd, path, err)
	}
	return string(data), nil
}

// StatRow is one parsed row of haproxy's `show stat` CSV.
type StatRow struct {
	ProxyName   string
	ServiceName string
	// Type: 0 frontend, 1 backend, 2 server, 3 listener (socket).
	Type   int
	Fields map[string]string
}

// Uint returns a numeric column (0 when empty or absent).
func (r StatRow) Uint(col string) uint64 {
	v, _ := strconv.ParseUint(r.Fields[col], 10, 64)
	return v
}

// Int returns a signed numeric column.
func (r StatRow) Int(col string) int64 {
	v, _ := strconv.ParseInt(r.Fields[col], 10, 64)
	return v
}

// ParseShowStat parses the CSV answer of `show stat`. The first line is the
// header, "# pxname,svname,...".
func ParseShowStat(out string) ([]StatRow, error) {
	out = strings.TrimLeft(out, " \n")
	if !strings.HasPrefix(out, "# ") {
		return nil, fmt.Errorf("show stat: missing CSV header in %q", truncate(out, 200))
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("show stat header: %w", err)
	}
	var rows []StatRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("show stat row: %w", err)
		}
		if len(rec) < 2 || (len(rec) == 1 && rec[0] == "") {
			continue
		}
		row := StatRow{Fields: make(map[string]string, len(header))}
		for i, h := range header {
			if i < len(rec) && h != "" {
				row.Fields[h] = rec[i]
			}
		}
		row.ProxyName = row.Fields["pxname"]
		row.ServiceName = row.Fields["svname"]
		row.Type = int(row.Int("type"))
		rows = append(rows, row)
	}
	return rows, nil
}

// ShowStat queries a stats socket.
func ShowStat(ctx context.Context, socketPath string) ([]StatRow, error) {
	out, err := socketCommand(ctx, socketPath, "show stat", false)
	if err != nil {
		return nil, err
	}
	return ParseShowStat(out)
}

// VRRPCheck is the VRRP health check of an amphora (Octavia's
// haproxy-vrrp-check): every stats socket must answer `show stat`. With no
// sockets it fails, so an amphora without load balancers never becomes
// MASTER.
func VRRPCheck(ctx context.Context, sockets []string) error {
	if len(sockets) == 0 {
		return errors.New("vrrp check: no haproxy stats sockets")
	}
	for _, s := range sockets {
		rows, err := ShowStat(ctx, s)
		if err != nil {
			return fmt.Errorf("vrrp check: %w", err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("vrrp check: %s returned no statistics", s)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
