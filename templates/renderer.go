package templates

import (
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed *.tmpl
var templateFS embed.FS

// Renderer holds the parsed templates. It is safe for concurrent use.
type Renderer struct {
	haproxy       *template.Template
	keepalived    *template.Template
	keepalivedLVS *template.Template
}

// New parses the embedded templates.
func New() (*Renderer, error) {
	parse := func(name string) (*template.Template, error) {
		t, err := template.New(name).Option("missingkey=error").ParseFS(templateFS, name)
		if err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", name, err)
		}
		return t, nil
	}
	r := &Renderer{}
	var err error
	if r.haproxy, err = parse("haproxy.cfg.tmpl"); err != nil {
		return nil, err
	}
	if r.keepalived, err = parse("keepalived.conf.tmpl"); err != nil {
		return nil, err
	}
	if r.keepalivedLVS, err = parse("keepalivedlvs.conf.tmpl"); err != nil {
		return nil, err
	}
	return r, nil
}

func execute(t *template.Template, view any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, view); err != nil {
		return "", fmt.Errorf("templates: render %s: %w", t.Name(), err)
	}
	out := b.String()
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out, nil
}

// RenderHAProxy renders the haproxy.cfg of a load balancer: every enabled
// TCP, HTTP, HTTPS, TERMINATED_HTTPS and PROMETHEUS listener with its pools.
// UDP and SCTP listeners are ignored (see RenderKeepalivedLVS).
func (r *Renderer) RenderHAProxy(cfg LoadBalancerConfig) (string, error) {
	v, err := buildHAProxyView(cfg)
	if err != nil {
		return "", err
	}
	return execute(r.haproxy, v)
}

// RenderKeepalived renders the VRRP keepalived.conf of one amphora of an
// ACTIVE_STANDBY load balancer.
func (r *Renderer) RenderKeepalived(cfg KeepalivedConfig) (string, error) {
	v, err := buildVRRPView(cfg)
	if err != nil {
		return "", err
	}
	return execute(r.keepalived, v)
}

// RenderKeepalivedLVS renders the keepalived LVS configuration of one UDP or
// SCTP listener of the load balancer.
func (r *Renderer) RenderKeepalivedLVS(cfg LoadBalancerConfig, listenerID string) (string, error) {
	v, err := buildLVSView(cfg, listenerID)
	if err != nil {
		return "", err
	}
	return execute(r.keepalivedLVS, v)
}
