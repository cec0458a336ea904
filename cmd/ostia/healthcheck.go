package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"
)

func runHealthcheck(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	url := fs.String("url", "http://127.0.0.1:9100/healthz", "health URL of the service")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", *url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: status %d", *url, resp.StatusCode)
	}
	_, err = fmt.Fprintln(env.stdout, "ok")
	return err
}
