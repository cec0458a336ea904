package lbflows_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
	"github.com/ostia/ostia/templates"
)

func ptr[T any](v T) *T { return &v }

func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// tlsRefs are the references of a TERMINATED_HTTPS listener with client
// authentication and a TLS default pool.
type tlsRefs struct {
	def, sni, clientCA, clientCRL, poolCert, poolCA string
}

func newTLSRefs() tlsRefs {
	r := "https://barbican.example/v1/containers/"
	return tlsRefs{def: r + uuid.NewString(), sni: r + uuid.NewString(), clientCA: "https://barbican.example/v1/secrets/" + uuid.NewString(),
		clientCRL: "https://barbican.example/v1/secrets/" + uuid.NewString(), poolCert: r + uuid.NewString(),
		poolCA: "https://barbican.example/v1/secrets/" + uuid.NewString()}
}

func bundle(name string) ports.TLSBundle {
	return ports.TLSBundle{Certificate: []byte("-----BEGIN CERTIFICATE-----\n" + name + "\n-----END CERTIFICATE-----\n"),
		Intermediates: []byte("-----BEGIN CERTIFICATE-----\n" + name + "-int\n-----END CERTIFICATE-----\n"),
		PrivateKey:    []byte("-----BEGIN PRIVATE KEY-----\n" + name + "-key\n-----END PRIVATE KEY-----\n")}
}

func (e *env) fillCerts(r tlsRefs) {
	e.certs.PutTLSBundle(r.def, bundle("default"))
	e.certs.PutTLSBundle(r.sni, bundle("sni"))
	e.certs.PutTLSBundle(r.poolCert, bundle("pool-client"))
	e.certs.PutSecret(r.clientCA, []byte("-----BEGIN CERTIFICATE-----\nclient-ca\n-----END CERTIFICATE-----\n"))
	e.certs.PutSecret(r.clientCRL, []byte("-----BEGIN X509 CRL-----\nclient-crl\n-----END X509 CRL-----\n"))
	e.certs.PutSecret(r.poolCA, []byte("-----BEGIN CERTIFICATE-----\npool-ca\n-----END CERTIFICATE-----\n"))
}

// createTLSLB creates a load balancer with a TERMINATED_HTTPS listener
// (default + SNI certificate, client CA and CRL) whose default pool talks
// TLS to members with a client certificate and a CA.
func (e *env) createTLSLB(topology string, r tlsRefs) (string, string, string, []string) {
	e.t.Helper()
	id, lisID, poolID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	cmd := lb.CreateLoadBalancer{ID: id, ProjectID: "proj-1", VipSubnetID: "subnet-vip", VipNetworkID: "net-vip",
		Topology: topology,
		Listeners: []lb.ListenerSpec{{ID: lisID, Protocol: "TERMINATED_HTTPS", ProtocolPort: 443,
			DefaultTLSContainerRef: ptr(r.def), SNIContainerRefs: []string{r.sni},
			ClientCATLSContainerRef: ptr(r.clientCA), ClientAuthentication: "OPTIONAL", ClientCRLContainerRef: ptr(r.clientCRL),
			DefaultPool: &lb.PoolSpec{ID: poolID, Name: ptr("tls-pool"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN", TLSEnabled: true,
				TLSContainerRef: ptr(r.poolCert), CATLSContainerRef: ptr(r.poolCA),
				Members: []lb.MemberSpec{{Address: "10.0.0.50", ProtocolPort: 8443}}}}},
	}
	_, envs, err := e.svc.LoadBalancer(context.Background(), md, id, cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	return id, lisID, poolID, e.trigger(envs)
}

func TestTerminatedHTTPSCertificatesAreUploadedBeforeTheConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	r := newTLSRefs()
	e.fillCerts(r)
	lbID, lisID, poolID, ids := e.createTLSLB(lbflows.TopologyActiveStandby, r)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusActive)

	s := templates.Settings{}
	dir := templates.CertDir(s, lbID)
	def, sni := bundle("default").PEM(), bundle("sni").PEM()
	want := map[string]string{
		lbID + "/" + sha1Hex(def) + ".pem":                 string(def),
		lbID + "/" + sha1Hex(sni) + ".pem":                 string(sni),
		lbID + "/" + lisID + ".pem":                        dir + "/" + sha1Hex(def) + ".pem\n" + dir + "/" + sha1Hex(sni) + ".pem\n",
		lbID + "/" + poolID + ".pem":                       string(bundle("pool-client").PEM()),
		lbID + "/" + sha1Hex([]byte(r.clientCA)) + ".pem":  "-----BEGIN CERTIFICATE-----\nclient-ca\n-----END CERTIFICATE-----\n",
		lbID + "/" + sha1Hex([]byte(r.clientCRL)) + ".pem": "-----BEGIN X509 CRL-----\nclient-crl\n-----END X509 CRL-----\n",
		lbID + "/" + sha1Hex([]byte(r.poolCA)) + ".pem":    "-----BEGIN CERTIFICATE-----\npool-ca\n-----END CERTIFICATE-----\n",
	}
	in := e.input(ids[0])
	mustEqual(t, "amphorae", len(in.Amps), 2)
	for _, a := range in.Amps {
		av, ok := e.cloud.Agent(a.ID)
		if !ok || len(av.Config) == 0 {
			t.Fatalf("amphora %s has no configuration", a.ID)
		}
		// Every file was on the amphora when the configuration arrived.
		if len(av.ConfigFiles) != len(want) {
			t.Errorf("amphora %s held %d files at the config upload, want %d: %q", a.ID, len(av.ConfigFiles), len(want), keys(av.ConfigFiles))
		}
		for name, body := range want {
			if got, ok := av.ConfigFiles[name]; !ok || string(got) != body {
				t.Errorf("amphora %s: file %s = %q (present %v), want %q", a.ID, name, got, ok, body)
			}
		}
		// ... and the configuration refers to them by those paths.
		conf := string(av.Config)
		for _, ref := range []string{
			"ssl crt-list " + templates.CrtListPath(s, lbID, lisID),
			"ca-file " + templates.SecretPath(s, lbID, r.clientCA) + " verify optional",
			"crl-file " + templates.SecretPath(s, lbID, r.clientCRL),
			"crt " + templates.PoolCertPath(s, lbID, poolID),
			"ca-file " + templates.SecretPath(s, lbID, r.poolCA),
		} {
			if !strings.Contains(conf, ref) {
				t.Errorf("amphora %s: configuration lacks %q:\n%s", a.ID, ref, conf)
			}
		}
	}
	uploads := e.cloud.Calls(noop.OpUploadCertificate)
	mustEqual(t, "certificate uploads", uploads, 2*len(want))

	// An update (a new SNI certificate) uploads the files again, the new
	// one included, and the crt-list lists it.
	extra := "https://barbican.example/v1/containers/" + uuid.NewString()
	e.certs.PutTLSBundle(extra, bundle("extra"))
	_, envs, err := e.svc.LoadBalancer(context.Background(), md, lbID, lb.UpdateListener{ListenerID: lisID,
		SNIContainerRefs: aggregates.Value([]string{r.sni, extra})})
	if err != nil {
		t.Fatal(err)
	}
	upd := e.trigger(envs)
	mustEqual(t, "update sagas", len(upd), 1)
	e.waitSaga(upd[0], saga.StatusCompleted, waitFor)
	extraPEM := bundle("extra").PEM()
	for _, a := range in.Amps {
		av, _ := e.cloud.Agent(a.ID)
		if got := string(av.ConfigFiles[lbID+"/"+sha1Hex(extraPEM)+".pem"]); got != string(extraPEM) {
			t.Fatalf("amphora %s: new SNI certificate %q", a.ID, got)
		}
		if list := string(av.ConfigFiles[lbID+"/"+lisID+".pem"]); !strings.HasSuffix(list, dir+"/"+sha1Hex(extraPEM)+".pem\n") {
			t.Fatalf("amphora %s: crt-list %q", a.ID, list)
		}
	}
	mustEqual(t, "certificate uploads after the update", e.cloud.Calls(noop.OpUploadCertificate), uploads+2*(len(want)+1))
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMissingCertificateFailsTheFlow(t *testing.T) {
	t.Parallel()
	for _, missing := range []string{"default", "client CA", "pool CA"} {
		t.Run(missing, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, noop.Config{})
			r := newTLSRefs()
			e.fillCerts(r)
			gone := map[string]string{"default": r.def, "client CA": r.clientCA, "pool CA": r.poolCA}[missing]
			e.certs.Delete(gone)
			lbID, _, _, ids := e.createTLSLB(lbflows.TopologySingle, r)
			e.startRunner(e.runnerConfig("w1"))
			e.waitSaga(ids[0], saga.StatusFailed, waitFor)
			mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusError)
			mustEqual(t, "configuration uploads", e.cloud.Calls(noop.OpUploadConfig), 0)
			// Permanent: asked once, not retried.
			mustEqual(t, "fetches of the missing reference", e.certs.Fetches(gone), 1)
			if live := e.cloud.Live(""); len(live) > 0 {
				t.Fatalf("left behind: %v", live)
			}
			envs, err := e.es.Load(context.Background(), events.AggregateSaga, ids[0], 0)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, env := range envs {
				if bytes.Contains(env.GetPayload(), []byte("could not retrieve")) && bytes.Contains(env.GetPayload(), []byte(gone)) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no saga event names the missing reference %s", gone)
			}
		})
	}
}

func TestTLSWithoutCertManagerFails(t *testing.T) {
	t.Parallel()
	pool := newEnv(t, noop.Config{}).pool
	e := newEnvWithPool(t, pool, noop.Config{})
	var err error
	if e.flows, err = lbflows.New(lbflows.Config{Commands: e.svc, Loader: e.h, Compute: e.cloud, Network: e.cloud,
		Agent: e.cloud, Certificates: e.cloud, ImageTag: "amphora", FlavorID: "amp-flavor",
		ManagementNetworkIDs: []string{"lb-mgmt"}}); err != nil {
		t.Fatal(err)
	}
	lbID, _, _, ids := e.createTLSLB(lbflows.TopologySingle, newTLSRefs())
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusFailed, waitFor)
	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusError)
	mustEqual(t, "configuration uploads", e.cloud.Calls(noop.OpUploadConfig), 0)
}
