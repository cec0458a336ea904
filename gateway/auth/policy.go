package auth

import (
	"fmt"
	"strings"

	"github.com/ostia/ostia/aggregates"
)

// Policy is Octavia's default RBAC policy (api-v2.md 0.10).
type Policy struct {
	// EnforceNewDefaults drops the legacy load-balancer_* roles
	// (oslo.policy enforce_new_defaults); by default they are OR-ed in.
	EnforceNewDefaults bool
}

// ForbiddenMessage is Octavia's 403 policy fault string.
const ForbiddenMessage = "Policy does not allow this request to be performed."

func (p Policy) legacy(c *Credentials, role string) bool {
	return !p.EnforceNewDefaults && c.HasRole(role)
}

func owner(c *Credentials, project string) bool {
	return c.ProjectID != "" && c.ProjectID == project
}

// ContextIsAdmin is the context_is_admin rule.
func (p Policy) ContextIsAdmin(c *Credentials) bool {
	return c.HasRole("admin") || p.legacy(c, "load-balancer_admin")
}

func (p Policy) admin(c *Credentials) bool {
	return c.IsAdmin || c.HasRole("admin") || p.legacy(c, "load-balancer_admin")
}

func (p Policy) globalObserver(c *Credentials) bool {
	return c.HasRole("admin") || p.legacy(c, "load-balancer_global_observer")
}

func (p Policy) memberAndOwner(c *Credentials, project string) bool {
	return (c.HasRole("member") || p.legacy(c, "load-balancer_member")) && owner(c, project)
}

func (p Policy) observerAndOwner(c *Credentials, project string) bool {
	return (c.HasRole("reader") || p.legacy(c, "load-balancer_observer")) && owner(c, project)
}

func (p Policy) quotaAdmin(c *Credentials) bool {
	return c.HasRole("admin") || p.legacy(c, "load-balancer_quota_admin")
}

// Rule evaluates one of Octavia's named base rules ("load-balancer:read",
// "load-balancer:write", "context_is_admin", ...) for a target project.
func (p Policy) Rule(c *Credentials, rule, project string) (bool, error) {
	switch rule {
	case "context_is_admin":
		return p.ContextIsAdmin(c), nil
	case "load-balancer:admin":
		return p.admin(c), nil
	case "load-balancer:global_observer":
		return p.globalObserver(c), nil
	case "load-balancer:member_and_owner":
		return p.memberAndOwner(c, project), nil
	case "load-balancer:observer_and_owner":
		return p.observerAndOwner(c, project), nil
	case "load-balancer:quota-admin":
		return p.quotaAdmin(c), nil
	case "service":
		return c.HasRole("service"), nil
	case "load-balancer:read":
		return p.observerAndOwner(c, project) || p.globalObserver(c) || p.memberAndOwner(c, project) || p.admin(c), nil
	case "load-balancer:read-global":
		return p.globalObserver(c) || p.admin(c), nil
	case "load-balancer:write":
		return p.memberAndOwner(c, project) || p.admin(c), nil
	case "load-balancer:read-quota":
		return p.observerAndOwner(c, project) || p.globalObserver(c) || p.memberAndOwner(c, project) ||
			p.quotaAdmin(c) || p.admin(c), nil
	case "load-balancer:read-quota-global":
		return p.globalObserver(c) || p.quotaAdmin(c) || p.admin(c), nil
	case "load-balancer:write-quota":
		return p.quotaAdmin(c) || p.admin(c), nil
	}
	return false, fmt.Errorf("auth: unknown policy rule %q", rule)
}

// RuleFor maps an action ("loadbalancer:get_all", "quota:put", with or
// without the "os_load-balancer_api:" prefix) to its rule expression: one
// rule name, or several separated by " or ".
func RuleFor(action string) (string, error) {
	a := strings.TrimPrefix(action, "os_load-balancer_api:")
	resource, verb, ok := strings.Cut(a, ":")
	if !ok {
		return "", fmt.Errorf("auth: malformed policy action %q", action)
	}
	switch resource {
	case "loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy", "l7rule":
		switch verb {
		case "get_all":
			if resource == "member" {
				return "load-balancer:read or service", nil
			}
			return "load-balancer:read", nil
		case "get_one", "get_stats", "get_status":
			return "load-balancer:read", nil
		case "get_all-global":
			return "load-balancer:read-global", nil
		case "post", "put", "delete":
			return "load-balancer:write", nil
		case "post:vip_sg_ids", "put:vip_sg_ids":
			if resource == "loadbalancer" {
				return "load-balancer:write", nil
			}
		case "put_failover":
			if resource == "loadbalancer" {
				return "load-balancer:admin", nil
			}
		}
	case "amphora":
		switch verb {
		case "get_all", "get_one", "delete", "get_stats", "put_failover", "put_config":
			return "load-balancer:admin", nil
		}
	case "quota":
		switch verb {
		case "get_all", "get_one", "get_defaults":
			return "load-balancer:read-quota", nil
		case "get_all-global":
			return "load-balancer:read-quota-global", nil
		case "put", "delete":
			return "load-balancer:write-quota", nil
		}
	case "provider":
		if verb == "get_all" {
			return "load-balancer:read", nil
		}
	case "provider-flavor", "provider-availability-zone":
		if verb == "get_all" {
			return "load-balancer:admin", nil
		}
	case "flavor", "availability-zone":
		switch verb {
		case "get_all", "get_one":
			return "load-balancer:read", nil
		case "post", "put", "delete":
			return "load-balancer:admin", nil
		}
	case "flavor-profile", "availability-zone-profile":
		switch verb {
		case "get_all", "get_one", "post", "put", "delete":
			return "load-balancer:admin", nil
		}
	}
	return "", fmt.Errorf("auth: unknown policy action %q", action)
}

// Allowed reports whether the caller may perform the action on an object
// owned by targetProjectID (for collections and project-less objects:
// the caller's own project).
func (p Policy) Allowed(c *Credentials, action, targetProjectID string) (bool, error) {
	expr, err := RuleFor(action)
	if err != nil {
		return false, err
	}
	for _, rule := range strings.Split(expr, " or ") {
		ok, err := p.Rule(c, rule, targetProjectID)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// Authorize returns nil when the caller may perform the action, a
// KindForbidden *aggregates.Error (403, "Policy does not allow this request
// to be performed.") when not, and a plain error for an unknown action.
func (p Policy) Authorize(c *Credentials, action, targetProjectID string) error {
	if c == nil {
		return aggregates.Errorf(aggregates.KindForbidden, ForbiddenMessage)
	}
	ok, err := p.Allowed(c, action, targetProjectID)
	if err != nil {
		return err
	}
	if !ok {
		return aggregates.Errorf(aggregates.KindForbidden, ForbiddenMessage)
	}
	return nil
}

// Authorize checks an action with the default policy (legacy roles on).
func Authorize(c *Credentials, action, targetProjectID string) error {
	return Policy{}.Authorize(c, action, targetProjectID)
}
