package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// ip runs the ip command (iproute2).
func (d *Driver) ip(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func missingDevice(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "Cannot find device") || strings.Contains(err.Error(), "does not exist"))
}

func (d *Driver) linkExists(ctx context.Context, name string) (bool, error) {
	_, err := d.ip(ctx, "link", "show", "dev", name)
	if missingDevice(err) {
		return false, nil
	}
	return err == nil, err
}

// deleteLink deletes an interface; a missing one is fine.
func (d *Driver) deleteLink(ctx context.Context, name string) error {
	if _, err := d.ip(ctx, "link", "del", "dev", name); err != nil && !missingDevice(err) {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

type ipAddrInfo struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// ensureBridge creates the bridge with the gateway address unless it
// exists, and refuses a VIP subnet another interface already uses.
func (d *Driver) ensureBridge(ctx context.Context) error {
	out, err := d.ip(ctx, "-json", "addr", "show")
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	var links []ipAddrInfo
	if err := json.Unmarshal(out, &links); err != nil {
		return fmt.Errorf("local: parse ip -json addr: %w", err)
	}
	for _, l := range links {
		if l.Ifname == d.cfg.Bridge {
			continue
		}
		for _, a := range l.AddrInfo {
			addr, err := netip.ParseAddr(a.Local)
			if err != nil {
				continue
			}
			if d.cfg.VIPSubnet.Contains(addr) || netip.PrefixFrom(addr, a.Prefixlen).Masked().Contains(d.gateway) {
				return fmt.Errorf("local: VIP subnet %s overlaps %s on %s; choose another [local] vip_subnet",
					d.cfg.VIPSubnet, netip.PrefixFrom(addr, a.Prefixlen), l.Ifname)
			}
		}
	}
	exists, err := d.linkExists(ctx, d.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if !exists {
		if _, err := d.ip(ctx, "link", "add", d.cfg.Bridge, "type", "bridge"); err != nil {
			return fmt.Errorf("local: create bridge: %w", err)
		}
		d.log.InfoContext(ctx, "created bridge", "bridge", d.cfg.Bridge)
	}
	gw := netip.PrefixFrom(d.gateway, d.cfg.VIPSubnet.Bits()).String()
	if _, err := d.ip(ctx, "addr", "replace", gw, "dev", d.cfg.Bridge); err != nil {
		return fmt.Errorf("local: bridge address: %w", err)
	}
	if _, err := d.ip(ctx, "link", "set", "dev", d.cfg.Bridge, "up"); err != nil {
		return fmt.Errorf("local: bridge up: %w", err)
	}
	return nil
}
