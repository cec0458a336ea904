// Package ports declares what the load-balancer sagas need from the
// outside world: compute (Nova), network (Neutron), the amphora agent and a
// certificate authority. Adapters live in internal/drivers (noop, and the
// real OpenStack and gRPC agent drivers).
//
// Every call takes a context and returns errors sortable with errors.Is /
// errors.As into the saga error kinds: wrap saga.ErrTransient for timeouts,
// 5xx and conflicts worth retrying, saga.ErrPermanent for what retrying
// cannot fix, and ErrNotFound for a missing resource (deletes treat a
// missing resource as success and return nil).
//
// Idempotency is the caller's business: every resource carries a
// deterministic name plus ownership metadata or tags (lb_id, amphora_id,
// saga_id), and the sagas find before they create.
package ports

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) for a resource that does not exist.
var ErrNotFound = errors.New("resource not found")

// Ownership metadata and tag keys.
const (
	TagLoadBalancerID = "lb_id"
	TagAmphoraID      = "amphora_id"
	TagSagaID         = "saga_id"
	TagRole           = "role"
	// TagMemberSubnet marks an amphora's port on a member subnet (its
	// value is the subnet id), so the network delta finds it again.
	TagMemberSubnet = "member_subnet_id"
	// TagAllocatedBy marks a VIP port the API allocated before the load
	// balancer was accepted (value AllocatedByAPI), so a port left behind
	// by a crash in between can be found and swept.
	TagAllocatedBy = "allocated_by"
	AllocatedByAPI = "api"
)

// Server statuses as Nova reports them.
const (
	ServerBuild  = "BUILD"
	ServerActive = "ACTIVE"
	ServerError  = "ERROR"
)

// ServerSpec describes an amphora server to boot.
type ServerSpec struct {
	Name          string
	ImageTag      string
	FlavorID      string
	NetworkIDs    []string
	ServerGroupID string
	Zone          string
	Metadata      map[string]string
	// ConfigDrive are files for the config drive (server certificate,
	// agent configuration).
	ConfigDrive map[string][]byte
}

// Server is a compute instance.
type Server struct {
	ID       string
	Name     string
	Status   string
	Fault    string
	Metadata map[string]string
	// ManagementIP is the amphora's address on the management network.
	ManagementIP string
	Zone         string
	ImageID      string
	FlavorID     string
}

// ServerGroup is a Nova server group.
type ServerGroup struct {
	ID     string
	Name   string
	Policy string
}

// Compute is the Nova port.
type Compute interface {
	// CreateServer boots a server; it does not look for an existing one.
	CreateServer(ctx context.Context, spec ServerSpec) (Server, error)
	// FindServers lists servers whose name equals name (when not empty)
	// and whose metadata contains every pair of metadata.
	FindServers(ctx context.Context, name string, metadata map[string]string) ([]Server, error)
	GetServer(ctx context.Context, id string) (Server, error)
	DeleteServer(ctx context.Context, id string) error
	CreateServerGroup(ctx context.Context, name, policy string) (ServerGroup, error)
	FindServerGroups(ctx context.Context, name string) ([]ServerGroup, error)
	DeleteServerGroup(ctx context.Context, id string) error
}

// PortSpec describes a Neutron port.
type PortSpec struct {
	Name      string
	NetworkID string
	SubnetID  string
	// FixedIP requests an address (empty: any).
	FixedIP      string
	AdminStateUp bool
	DeviceOwner  string
	Tags         map[string]string
	QosPolicyID  string
}

// Port is a Neutron port.
type Port struct {
	ID                    string
	Name                  string
	NetworkID             string
	SubnetID              string
	IP                    string
	MAC                   string
	DeviceID              string
	Tags                  map[string]string
	AllowedAddressPairs   []string
	SecurityGroupIDs      []string
	AdminStateUp          bool
	SubnetCIDR, GatewayIP string
	MTU                   int
}

// SecurityGroup is a Neutron security group.
type SecurityGroup struct {
	ID    string
	Name  string
	Tags  map[string]string
	Rules []Rule
}

// Rule is an ingress rule.
type Rule struct {
	Protocol string // tcp, udp, sctp, or an IP protocol number ("112")
	Port     int32  // 0: any
	CIDR     string // empty: any
}

// Subnet is a Neutron subnet.
type Subnet struct {
	ID        string
	NetworkID string
	CIDR      string
	GatewayIP string
}

// Network is the Neutron port.
type Network interface {
	// GetSubnet returns a subnet (ErrNotFound when there is none).
	GetSubnet(ctx context.Context, id string) (Subnet, error)
	CreatePort(ctx context.Context, spec PortSpec) (Port, error)
	// FindPorts lists ports whose name equals name (when not empty) and
	// whose tags contain every pair of tags.
	FindPorts(ctx context.Context, name string, tags map[string]string) ([]Port, error)
	GetPort(ctx context.Context, id string) (Port, error)
	DeletePort(ctx context.Context, id string) error
	// PlugPort attaches a port to a server (Nova interface attach);
	// plugging a port already on that server does nothing.
	PlugPort(ctx context.Context, serverID, portID string) error
	// UnplugPort detaches a port; a port not on the server is fine.
	UnplugPort(ctx context.Context, serverID, portID string) error
	SetAllowedAddressPairs(ctx context.Context, portID string, ips []string) error
	CreateSecurityGroup(ctx context.Context, name string, tags map[string]string) (SecurityGroup, error)
	FindSecurityGroups(ctx context.Context, name string, tags map[string]string) ([]SecurityGroup, error)
	// SetSecurityGroupRules makes the group's ingress rules exactly rules.
	SetSecurityGroupRules(ctx context.Context, groupID string, rules []Rule) error
	SetPortSecurityGroups(ctx context.Context, portID string, groupIDs []string) error
	DeleteSecurityGroup(ctx context.Context, id string) error
}

// Amphora addresses one amphora's agent.
type Amphora struct {
	ID           string
	ComputeID    string
	ManagementIP string
}

// VIPPlug is what the agent needs to bring the VIP up on an amphora.
type VIPPlug struct {
	VIP        string
	SubnetCIDR string
	GatewayIP  string
	MAC        string
	MTU        int
	VrrpIP     string
	Additional []string
	// ManagedByKeepalived leaves the VIP address itself to keepalived
	// (ACTIVE_STANDBY): the agent configures the interface, routes and the
	// VRRP address, but only the VRRP MASTER holds the VIP.
	ManagedByKeepalived bool
}

// FixedIP is one address of a plugged network interface.
type FixedIP struct {
	IP         string
	SubnetCIDR string
	GatewayIP  string
}

// NetworkPlug is what the agent needs to bring up a member-network
// interface (a port Nova attached to the amphora), found by its MAC.
type NetworkPlug struct {
	MAC      string
	MTU      int
	FixedIPs []FixedIP
}

// Agent is the amphora agent port. Uploads carry a generation that only
// grows (made from the load balancer's version, see
// lbflows.ConfigGeneration), so the agent ignores older configurations
// that arrive late. Implementations: internal/drivers/agentclient (the
// Ostia agent's gRPC API) and the noop cloud.
type Agent interface {
	// PlugVIP configures the VIP interface; doing it again is fine.
	PlugVIP(ctx context.Context, amp Amphora, plug VIPPlug) error
	// UploadConfig stores the rendered load-balancer configuration.
	UploadConfig(ctx context.Context, amp Amphora, lbID string, generation int64, config []byte) error
	// ReloadListeners (re)starts the listeners with the stored configuration.
	ReloadListeners(ctx context.Context, amp Amphora, lbID string) error
	// UploadKeepalived stores the VRRP configuration.
	UploadKeepalived(ctx context.Context, amp Amphora, generation int64, config []byte) error
	// StartKeepalived starts (or restarts) VRRP.
	StartKeepalived(ctx context.Context, amp Amphora) error
	// PlugNetwork configures a member-network interface; an interface
	// already plugged is configured again in place.
	PlugNetwork(ctx context.Context, amp Amphora, plug NetworkPlug) error
	// UpdateServerCertificate replaces the agent's own TLS certificate
	// (PEM: certificate followed by its key); new connections use it.
	UpdateServerCertificate(ctx context.Context, amp Amphora, pem []byte) error
	// UploadCertificate stores a TLS file of a load balancer (a listener
	// certificate with its key, a crt-list, a CA or CRL) in the amphora's
	// certificate directory of the load balancer (Octavia PUT
	// /loadbalancer/{lb_id}/certificates/{filename}); filename is a base
	// name ending in ".pem". Uploading the same file again replaces it.
	UploadCertificate(ctx context.Context, amp Amphora, lbID, filename string, pem []byte) error
}

// TLSBundle is a tenant certificate with its private key, as a listener
// serves it or a pool presents it to members.
type TLSBundle struct {
	// Certificate is the PEM certificate.
	Certificate []byte
	// Intermediates are PEM certificates of the chain (may be empty).
	Intermediates []byte
	// PrivateKey is the PEM private key, decrypted.
	PrivateKey []byte
}

// PEM is the single file haproxy loads: certificate, intermediates, key.
func (b TLSBundle) PEM() []byte {
	out := make([]byte, 0, len(b.Certificate)+len(b.Intermediates)+len(b.PrivateKey)+2)
	for _, part := range [][]byte{b.Certificate, b.Intermediates, b.PrivateKey} {
		if len(part) == 0 {
			continue
		}
		out = append(out, part...)
		if part[len(part)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out
}

// CertManager reads tenant TLS material by reference (Octavia's
// [certificates] cert_manager): listener default and SNI certificates,
// pool client certificates, and the CA and CRL files of client and member
// verification. Implementations: internal/certmanager (local directory),
// internal/drivers/openstack (Barbican) and internal/drivers/noop. A
// reference that does not exist returns an error wrapping ErrNotFound;
// material that cannot be used (unparseable, wrong passphrase, key not
// matching the certificate) wraps saga.ErrPermanent.
type CertManager interface {
	// GetTLSBundle fetches a certificate with its key and intermediates
	// (a passphrase-protected key is decrypted).
	GetTLSBundle(ctx context.Context, ref string) (TLSBundle, error)
	// GetSecret fetches a PEM secret: CA certificates or a CRL.
	GetSecret(ctx context.Context, ref string) ([]byte, error)
}

// Certificate is an amphora server certificate.
type Certificate struct {
	Serial    string
	PEM       []byte
	ExpiresAt time.Time
}

// Certificates issues amphora server certificates (CN = amphora id).
type Certificates interface {
	IssueServerCert(ctx context.Context, amphoraID string, validity time.Duration) (Certificate, error)
}
