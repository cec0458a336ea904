package agent

import (
	"testing"

	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

func TestParseShowProc(t *testing.T) {
	out := `#<PID>          <type>          <reloads>       <uptime>        <version>
29442           master          1 [failed: 1]   0d01h28m14s     2.6.12-1+deb12u4
# workers
29445           worker          1               0d01h28m14s     2.6.12-1+deb12u4
# old workers
29400           worker          2               0d01h28m14s     2.6.12-1+deb12u4
# programs

`
	info, err := parseShowProc(out)
	if err != nil {
		t.Fatal(err)
	}
	if info != (masterInfo{reloads: 1, failed: 1, workers: 1}) {
		t.Fatalf("got %+v", info)
	}
	if _, err := parseShowProc("Unknown command\n"); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestParseShowStat(t *testing.T) {
	out := "# pxname,svname,qcur,scur,stot,status,weight,lbtot,type,hrsp_2xx,check_status,addr,\n" +
		"l1,FRONTEND,,0,12,OPEN,,,0,12,,,\n" +
		"p1:l1,m1,0,0,6,UP,1,6,2,6,L4OK,10.0.0.1:80,\n" +
		"p1:l1,BACKEND,0,0,12,UP,1,12,1,12,,,\n"
	rows, err := ParseShowStat(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows %d", len(rows))
	}
	fe, srv, be := statsRowProto("lb", rows[0]), statsRowProto("lb", rows[1]), statsRowProto("lb", rows[2])
	if fe.GetType() != agentv1.StatsRowType_STATS_ROW_TYPE_FRONTEND || fe.GetListenerId() != "l1" || fe.GetTotalSessions() != 12 {
		t.Fatalf("frontend %v", fe)
	}
	if srv.GetType() != agentv1.StatsRowType_STATS_ROW_TYPE_SERVER || srv.GetMemberId() != "m1" || srv.GetPoolId() != "p1" ||
		srv.GetListenerId() != "l1" || srv.GetStatus() != "UP" || srv.GetSelectedTotal() != 6 || srv.GetAddress() != "10.0.0.1:80" {
		t.Fatalf("server %v", srv)
	}
	if be.GetType() != agentv1.StatsRowType_STATS_ROW_TYPE_BACKEND || be.GetPoolId() != "p1" || be.GetMemberId() != "" {
		t.Fatalf("backend %v", be)
	}
	if _, err := ParseShowStat("Permission denied\n"); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestParseFrontends(t *testing.T) {
	cfg := `global
    daemon
frontend prometheus-exporter-internal-endpoint
    mode http
frontend l1
    maxconn 10
    mode http
backend p1:l1
    mode tcp
frontend l2
    bind 1.2.3.4:5
`
	fes := parseFrontends(cfg)
	if len(fes) != 2 || fes[0] != (frontend{"l1", "http"}) || fes[1] != (frontend{"l2", "tcp"}) {
		t.Fatalf("got %+v", fes)
	}
}

func TestValidNames(t *testing.T) {
	for id, ok := range map[string]bool{"5a1e0f3c-0000-4000-8000-000000000001": true, "..": false, "a/b": false, "": false, ".x": false} {
		if validID(id) != ok {
			t.Errorf("validID(%q) != %v", id, ok)
		}
	}
	for n, ok := range map[string]bool{"a.pem": true, "abc_1-2.pem": true, "../a.pem": false, "a.crt": false, ".pem": false} {
		if validCertName(n) != ok {
			t.Errorf("validCertName(%q) != %v", n, ok)
		}
	}
}
