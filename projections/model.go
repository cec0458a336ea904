package projections

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/catalog"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// row is one read-model row: an API object with the columns the queries
// filter and sort on.
type row struct {
	kind        views.Kind
	id          string
	aggregateID string
	projectID   string
	lbID        string
	parentID    string
	name        string
	prov        string
	oper        string
	created     *time.Time
	updated     *time.Time
	tags        []string
	doc         []byte
	aux         []byte
}

type rowKey struct {
	kind views.Kind
	id   string
}

func (r *row) key() rowKey { return rowKey{r.kind, r.id} }

// same reports whether two renderings of a row are identical.
func (r *row) same(o *row) bool {
	return r.aggregateID == o.aggregateID && r.projectID == o.projectID && r.lbID == o.lbID && r.parentID == o.parentID &&
		string(r.doc) == string(o.doc) && string(r.aux) == string(o.aux)
}

// auditItem is one object an event changed, rendered before and after it
// (nil when the object did not exist, and with auditSubjects).
type auditItem struct {
	kind          views.Kind
	id            string
	before, after []byte
}

// subject names an object an event is about.
type subject struct {
	kind views.Kind
	id   string
}

// auditMode is what apply reports about the objects an event changed.
type auditMode int

const (
	// auditNone reports nothing.
	auditNone auditMode = iota
	// auditSubjects names the objects (kind and id) without rendering
	// them: what the projector and replays store in audit_events (the
	// documents are rendered from the event log when the trail is read).
	auditSubjects
	// auditRendered names the objects and renders them before and after
	// the event.
	auditRendered
)

// model is the projection-side state of one aggregate: the aggregate's own
// state (evolved with the aggregate's Apply) plus what the views need.
type model interface {
	// apply evolves the model by one event; unless audit is auditNone it
	// also returns the objects the event changed (in the same order for
	// auditSubjects and auditRendered), with auditRendered rendered before
	// and after.
	apply(env *eventsv1.Envelope, payload proto.Message, audit auditMode) ([]auditItem, error)
	// rows renders every read-model row of the aggregate.
	rows() ([]row, error)
	// usage returns the billable intervals of the aggregate's resources
	// (a copy; it outlives the resources, unlike the rows).
	usage() []usageRecord
}

// kindsOf lists the read-model kinds an aggregate type writes.
func kindsOf(aggregateType string) []views.Kind {
	switch aggregateType {
	case events.AggregateLoadBalancer:
		return []views.Kind{views.KindLoadBalancer, views.KindListener, views.KindPool, views.KindMember,
			views.KindHealthMonitor, views.KindL7Policy, views.KindL7Rule}
	case events.AggregateAmphora:
		return []views.Kind{views.KindAmphora}
	case events.AggregateProject:
		return []views.Kind{views.KindQuota}
	case events.AggregateCatalog:
		return []views.Kind{views.KindFlavor, views.KindFlavorProfile, views.KindAvailabilityZone,
			views.KindAvailabilityZoneProfile}
	}
	return nil
}

// projectedTypes lists the aggregate types the projection follows.
func projectedTypes() []string {
	return []string{events.AggregateLoadBalancer, events.AggregateAmphora, events.AggregateProject, events.AggregateCatalog}
}

// projected reports whether the projection follows an aggregate type.
func projected(aggregateType string) bool { return kindsOf(aggregateType) != nil }

func newModel(aggregateType, id string) (model, error) {
	switch aggregateType {
	case events.AggregateLoadBalancer:
		return &lbModel{st: loadbalancer.New(id), touched: map[string]time.Time{}}, nil
	case events.AggregateAmphora:
		return &amphoraModel{st: amphora.New(id)}, nil
	case events.AggregateProject:
		return &projectModel{id: id, st: project.New()}, nil
	case events.AggregateCatalog:
		return &catalogModel{st: catalog.New()}, nil
	}
	return nil, fmt.Errorf("no projection for aggregate type %q", aggregateType)
}

func marshal(o views.Object) ([]byte, error) {
	if o == nil {
		return nil, nil
	}
	b, err := appendJSON(make([]byte, 0, 2048), o)
	if err != nil {
		return nil, fmt.Errorf("encode view: %w", err)
	}
	// The bytes are kept (cached rows, audit records): trim the scratch.
	return append(make([]byte, 0, len(b)), b...), nil
}

func parseTime(v any) *time.Time {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	t, err := time.Parse(views.TimeLayout, s)
	if err != nil {
		return nil
	}
	return &t
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// newRow fills the columns of a row from its API object.
func newRow(kind views.Kind, id, aggregateID, projectID, lbID, parentID string, doc views.Object, aux views.Object) (row, error) {
	d, err := marshal(doc)
	if err != nil {
		return row{}, err
	}
	a, err := marshal(aux)
	if err != nil {
		return row{}, err
	}
	r := row{kind: kind, id: id, aggregateID: aggregateID, projectID: projectID, lbID: lbID, parentID: parentID,
		name: str(doc["name"]), prov: str(doc["provisioning_status"]), oper: str(doc["operating_status"]),
		created: parseTime(doc["created_at"]), updated: parseTime(doc["updated_at"]), doc: d, aux: a, tags: []string{}}
	if r.prov == "" {
		r.prov = str(doc["status"]) // amphorae
	}
	if tags, ok := doc["tags"].([]string); ok {
		r.tags = append(r.tags, tags...)
	}
	return r, nil
}

// lbModel is a load balancer with its tree. touched records, per object,
// when an event without timestamps of its own (status changes, deletion
// requests, position shifts) last changed it: Octavia bumps updated_at on
// every row update.
type lbModel struct {
	st      *loadbalancer.State
	touched map[string]time.Time
	// projectID is the owner, kept past deletion for the usage records.
	projectID string
	// billed are the usage records of the load balancer and its listeners.
	billed []usageRecord
}

func kindOf(k eventsv1.ObjectKind) views.Kind {
	switch k {
	case eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER:
		return views.KindLoadBalancer
	case eventsv1.ObjectKind_OBJECT_KIND_LISTENER:
		return views.KindListener
	case eventsv1.ObjectKind_OBJECT_KIND_POOL:
		return views.KindPool
	case eventsv1.ObjectKind_OBJECT_KIND_MEMBER:
		return views.KindMember
	case eventsv1.ObjectKind_OBJECT_KIND_HEALTH_MONITOR:
		return views.KindHealthMonitor
	case eventsv1.ObjectKind_OBJECT_KIND_L7POLICY:
		return views.KindL7Policy
	case eventsv1.ObjectKind_OBJECT_KIND_L7RULE:
		return views.KindL7Rule
	}
	return ""
}

// subjects lists the objects an event of the load-balancer tree is about.
func (m *lbModel) subjects(payload proto.Message) []subject {
	lb := subject{views.KindLoadBalancer, m.st.ID()}
	switch e := payload.(type) {
	case *eventsv1.LoadBalancerCreated:
		out := []subject{{views.KindLoadBalancer, e.GetLoadbalancer().GetId()}}
		for _, l := range e.GetListeners() {
			out = append(out, subject{views.KindListener, l.GetId()})
		}
		for _, p := range e.GetPools() {
			out = append(out, subject{views.KindPool, p.GetId()})
		}
		for _, x := range e.GetMembers() {
			out = append(out, subject{views.KindMember, x.GetId()})
		}
		for _, x := range e.GetHealthMonitors() {
			out = append(out, subject{views.KindHealthMonitor, x.GetId()})
		}
		for _, x := range e.GetL7Policies() {
			out = append(out, subject{views.KindL7Policy, x.GetId()})
		}
		for _, x := range e.GetL7Rules() {
			out = append(out, subject{views.KindL7Rule, x.GetId()})
		}
		return out
	case *eventsv1.ProvisioningStatusChanged:
		return changeSubjects(e.GetChanges())
	case *eventsv1.OperatingStatusChanged:
		return changeSubjects(e.GetChanges())
	case *eventsv1.ListenerCreated:
		return []subject{{views.KindListener, e.GetListener().GetId()}}
	case *eventsv1.ListenerUpdated:
		return []subject{{views.KindListener, e.GetListener().GetId()}}
	case *eventsv1.ListenerDeleteRequested:
		return []subject{{views.KindListener, e.GetListenerId()}}
	case *eventsv1.ListenerDeleted:
		return []subject{{views.KindListener, e.GetListenerId()}}
	case *eventsv1.PoolCreated:
		return []subject{{views.KindPool, e.GetPool().GetId()}}
	case *eventsv1.PoolUpdated:
		return []subject{{views.KindPool, e.GetPool().GetId()}}
	case *eventsv1.PoolDeleteRequested:
		return []subject{{views.KindPool, e.GetPoolId()}}
	case *eventsv1.PoolDeleted:
		return []subject{{views.KindPool, e.GetPoolId()}}
	case *eventsv1.MemberCreated:
		return []subject{{views.KindMember, e.GetMember().GetId()}}
	case *eventsv1.MemberUpdated:
		return []subject{{views.KindMember, e.GetMember().GetId()}}
	case *eventsv1.MemberDeleteRequested:
		return []subject{{views.KindMember, e.GetMemberId()}}
	case *eventsv1.MemberDeleted:
		return []subject{{views.KindMember, e.GetMemberId()}}
	case *eventsv1.MembersBatchUpdated:
		var out []subject
		for _, x := range e.GetCreated() {
			out = append(out, subject{views.KindMember, x.GetId()})
		}
		for _, x := range e.GetUpdated() {
			out = append(out, subject{views.KindMember, x.GetId()})
		}
		for _, id := range e.GetDeletedMemberIds() {
			out = append(out, subject{views.KindMember, id})
		}
		return out
	case *eventsv1.HealthMonitorCreated:
		return []subject{{views.KindHealthMonitor, e.GetHealthMonitor().GetId()}}
	case *eventsv1.HealthMonitorUpdated:
		return []subject{{views.KindHealthMonitor, e.GetHealthMonitor().GetId()}}
	case *eventsv1.HealthMonitorDeleteRequested:
		return []subject{{views.KindHealthMonitor, e.GetHealthMonitorId()}}
	case *eventsv1.HealthMonitorDeleted:
		return []subject{{views.KindHealthMonitor, e.GetHealthMonitorId()}}
	case *eventsv1.L7PolicyCreated:
		return []subject{{views.KindL7Policy, e.GetL7Policy().GetId()}}
	case *eventsv1.L7PolicyUpdated:
		return []subject{{views.KindL7Policy, e.GetL7Policy().GetId()}}
	case *eventsv1.L7PolicyDeleteRequested:
		return []subject{{views.KindL7Policy, e.GetL7PolicyId()}}
	case *eventsv1.L7PolicyDeleted:
		return []subject{{views.KindL7Policy, e.GetL7PolicyId()}}
	case *eventsv1.L7RuleCreated:
		return []subject{{views.KindL7Rule, e.GetL7Rule().GetId()}}
	case *eventsv1.L7RuleUpdated:
		return []subject{{views.KindL7Rule, e.GetL7Rule().GetId()}}
	case *eventsv1.L7RuleDeleteRequested:
		return []subject{{views.KindL7Rule, e.GetL7RuleId()}}
	case *eventsv1.L7RuleDeleted:
		return []subject{{views.KindL7Rule, e.GetL7RuleId()}}
	}
	// load balancer events: updated, delete requested, deleted, failover,
	// VIP allocated
	return []subject{lb}
}

func changeSubjects(cs []*eventsv1.StatusChange) []subject {
	out := make([]subject, 0, len(cs))
	seen := map[string]bool{}
	for _, c := range cs {
		if k := kindOf(c.GetKind()); k != "" && !seen[c.GetId()] {
			seen[c.GetId()] = true
			out = append(out, subject{k, c.GetId()})
		}
	}
	return out
}

func render(t *views.Tree, s subject) views.Object {
	switch s.kind {
	case views.KindLoadBalancer:
		return t.LoadBalancer()
	case views.KindListener:
		return t.Listener(s.id)
	case views.KindPool:
		return t.Pool(s.id)
	case views.KindMember:
		return t.Member(s.id)
	case views.KindHealthMonitor:
		return t.HealthMonitor(s.id)
	case views.KindL7Policy:
		return t.L7Policy(s.id)
	case views.KindL7Rule:
		return t.L7Rule(s.id)
	}
	return nil
}

func (m *lbModel) renderAll(subjects []subject) ([][]byte, error) {
	t := views.NewTree(m.st, m.touched)
	out := make([][]byte, len(subjects))
	for i, s := range subjects {
		b, err := marshal(render(t, s))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (m *lbModel) apply(env *eventsv1.Envelope, payload proto.Message, audit auditMode) ([]auditItem, error) {
	var subjects []subject
	var before [][]byte
	if audit != auditNone {
		subjects = m.subjects(payload)
	}
	if audit == auditRendered {
		var err error
		if before, err = m.renderAll(subjects); err != nil {
			return nil, err
		}
	}
	positions := m.positionsBefore(payload)
	var cascade []string
	if e, ok := payload.(*eventsv1.LoadBalancerDeleteRequested); ok && e.GetCascade() {
		t := views.NewTree(m.st, nil)
		for _, ids := range [][]string{t.ListenerIDs(), t.PoolIDs(), t.MemberIDs(), t.HealthMonitorIDs(), t.L7PolicyIDs(), t.L7RuleIDs()} {
			cascade = append(cascade, ids...)
		}
	}
	if err := m.st.Apply(payload); err != nil {
		return nil, err
	}
	// Rounded like the store's TIMESTAMPTZ, so envelopes fresh from an
	// append and envelopes read back render alike.
	at := env.GetOccurredAt().AsTime().Round(time.Microsecond)
	m.touch(at, payload, positions, cascade)
	m.bill(at, payload)
	switch audit {
	case auditNone:
		return nil, nil
	case auditSubjects:
		items := make([]auditItem, len(subjects))
		for i, s := range subjects {
			items[i] = auditItem{kind: s.kind, id: s.id}
		}
		return items, nil
	}
	after, err := m.renderAll(subjects)
	if err != nil {
		return nil, err
	}
	items := make([]auditItem, len(subjects))
	for i, s := range subjects {
		items[i] = auditItem{kind: s.kind, id: s.id, before: before[i], after: after[i]}
	}
	return items, nil
}

// positionsBefore returns the positions of the policies an event
// renumbers, before it.
func (m *lbModel) positionsBefore(payload proto.Message) map[string]int32 {
	var pos map[string]int32
	switch e := payload.(type) {
	case *eventsv1.L7PolicyCreated:
		pos = e.GetPositions()
	case *eventsv1.L7PolicyUpdated:
		pos = e.GetPositions()
	case *eventsv1.L7PolicyDeleted:
		pos = e.GetPositions()
	}
	if len(pos) == 0 {
		return nil
	}
	out := make(map[string]int32, len(pos))
	for id := range pos {
		if p := m.st.L7Policy(id); p != nil {
			out[id] = p.Position
		}
	}
	return out
}

func (m *lbModel) touch(at time.Time, payload proto.Message, positions map[string]int32, cascade []string) {
	mark := func(id string) { m.touched[id] = at }
	switch e := payload.(type) {
	case *eventsv1.ProvisioningStatusChanged:
		for _, c := range e.GetChanges() {
			if c.GetProvisioningStatus() != "" {
				mark(c.GetId())
			}
		}
	case *eventsv1.OperatingStatusChanged:
		for _, c := range e.GetChanges() {
			if c.GetOperatingStatus() != "" {
				mark(c.GetId())
			}
		}
	case *eventsv1.LoadBalancerDeleteRequested:
		mark(m.st.ID())
		for _, id := range cascade {
			mark(id)
		}
	case *eventsv1.LoadBalancerDeleted:
		clear(m.touched)
	case *eventsv1.ListenerDeleteRequested:
		mark(e.GetListenerId())
	case *eventsv1.PoolDeleteRequested:
		mark(e.GetPoolId())
	case *eventsv1.MemberDeleteRequested:
		mark(e.GetMemberId())
	case *eventsv1.HealthMonitorDeleteRequested:
		mark(e.GetHealthMonitorId())
	case *eventsv1.L7PolicyDeleteRequested:
		mark(e.GetL7PolicyId())
	case *eventsv1.L7RuleDeleteRequested:
		mark(e.GetL7RuleId())
	case *eventsv1.MembersBatchUpdated:
		for _, id := range e.GetDeletedMemberIds() {
			mark(id)
		}
	case *eventsv1.ListenerDeleted:
		delete(m.touched, e.GetListenerId())
	case *eventsv1.PoolDeleted:
		delete(m.touched, e.GetPoolId())
	case *eventsv1.MemberDeleted:
		delete(m.touched, e.GetMemberId())
	case *eventsv1.HealthMonitorDeleted:
		delete(m.touched, e.GetHealthMonitorId())
	case *eventsv1.L7RuleDeleted:
		delete(m.touched, e.GetL7RuleId())
	}
	for id, old := range positions {
		if p := m.st.L7Policy(id); p != nil && p.Position != old {
			mark(id)
		}
	}
	if e, ok := payload.(*eventsv1.L7PolicyDeleted); ok {
		delete(m.touched, e.GetL7PolicyId())
	}
}

// bill keeps the usage records: a load balancer or listener is billable
// from the first time it became ACTIVE until it is deleted.
func (m *lbModel) bill(at time.Time, payload proto.Message) {
	lbID := m.st.ID()
	switch e := payload.(type) {
	case *eventsv1.LoadBalancerCreated:
		m.projectID = e.GetLoadbalancer().GetProjectId()
	case *eventsv1.ProvisioningStatusChanged:
		for _, c := range e.GetChanges() {
			if c.GetProvisioningStatus() != loadbalancer.StatusActive {
				continue
			}
			switch c.GetKind() {
			case eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER:
				m.open(usageLoadBalancer, c.GetId(), lbID, at)
			case eventsv1.ObjectKind_OBJECT_KIND_LISTENER:
				m.open(usageListener, c.GetId(), lbID, at)
			}
		}
	case *eventsv1.ListenerDeleted:
		closeUsage(m.billed, usageListener, e.GetListenerId(), at)
	case *eventsv1.LoadBalancerDeleted:
		for i := range m.billed {
			if m.billed[i].until.IsZero() {
				m.billed[i].until = at
			}
		}
	}
}

// open starts the usage record of a resource unless it has one.
func (m *lbModel) open(kind, id, lbID string, at time.Time) {
	for _, u := range m.billed {
		if u.kind == kind && u.id == id {
			return
		}
	}
	m.billed = append(m.billed, usageRecord{kind: kind, id: id, projectID: m.projectID, lbID: lbID, from: at})
}

func (m *lbModel) usage() []usageRecord { return append([]usageRecord(nil), m.billed...) }

func (m *lbModel) rows() ([]row, error) {
	t := views.NewTree(m.st, m.touched)
	lbObj := t.LoadBalancer()
	if lbObj == nil {
		return nil, nil
	}
	lbID := m.st.ID()
	projectID := str(lbObj["project_id"])
	var out []row
	add := func(kind views.Kind, id, parent string, doc, aux views.Object) error {
		if doc == nil {
			return nil
		}
		r, err := newRow(kind, id, lbID, projectID, lbID, parent, doc, aux)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}
	if err := add(views.KindLoadBalancer, lbID, "", lbObj, t.StatusTree()); err != nil {
		return nil, err
	}
	for _, id := range t.ListenerIDs() {
		if err := add(views.KindListener, id, lbID, t.Listener(id), nil); err != nil {
			return nil, err
		}
	}
	for _, id := range t.PoolIDs() {
		if err := add(views.KindPool, id, lbID, t.Pool(id), nil); err != nil {
			return nil, err
		}
	}
	for _, id := range t.MemberIDs() {
		if err := add(views.KindMember, id, m.st.Member(id).GetPoolId(), t.Member(id), nil); err != nil {
			return nil, err
		}
	}
	for _, id := range t.HealthMonitorIDs() {
		if err := add(views.KindHealthMonitor, id, m.st.HealthMonitor(id).GetPoolId(), t.HealthMonitor(id), nil); err != nil {
			return nil, err
		}
	}
	for _, id := range t.L7PolicyIDs() {
		if err := add(views.KindL7Policy, id, m.st.L7Policy(id).GetListenerId(), t.L7Policy(id), nil); err != nil {
			return nil, err
		}
	}
	for _, id := range t.L7RuleIDs() {
		if err := add(views.KindL7Rule, id, m.st.L7Rule(id).GetL7PolicyId(), t.L7Rule(id), nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// amphoraModel is one amphora. billed is its usage record: an amphora is
// billable from its creation (a server is booted for it) until it is
// deleted.
type amphoraModel struct {
	st     *amphora.State
	billed *usageRecord
}

func (m *amphoraModel) apply(env *eventsv1.Envelope, payload proto.Message, audit auditMode) ([]auditItem, error) {
	var before []byte
	var err error
	if audit == auditRendered {
		if before, err = marshal(views.Amphora(m.st)); err != nil {
			return nil, err
		}
	}
	if err := m.st.Apply(payload); err != nil {
		return nil, err
	}
	m.bill(env.GetOccurredAt().AsTime().Round(time.Microsecond), payload)
	switch audit {
	case auditNone:
		return nil, nil
	case auditSubjects:
		return []auditItem{{kind: views.KindAmphora, id: m.st.ID()}}, nil
	}
	after, err := marshal(views.Amphora(m.st))
	if err != nil {
		return nil, err
	}
	return []auditItem{{kind: views.KindAmphora, id: m.st.ID(), before: before, after: after}}, nil
}

func (m *amphoraModel) bill(at time.Time, payload proto.Message) {
	switch payload.(type) {
	case *eventsv1.AmphoraCreated:
		if m.billed == nil {
			m.billed = &usageRecord{kind: usageAmphora, id: m.st.ID(), from: at}
		}
	case *eventsv1.AmphoraDeleted, *eventsv1.AmphoraStatusChanged:
		if m.billed != nil && m.billed.until.IsZero() && m.st.Status() == amphora.StatusDeleted {
			m.billed.until = at
		}
	}
	if m.billed != nil {
		// The owner and load balancer as last recorded.
		a := m.st.Amphora()
		m.billed.projectID, m.billed.lbID = a.GetProjectId(), a.GetLoadbalancerId()
	}
}

func (m *amphoraModel) usage() []usageRecord {
	if m.billed == nil {
		return nil
	}
	return []usageRecord{*m.billed}
}

func (m *amphoraModel) rows() ([]row, error) {
	a := m.st.Amphora()
	doc := views.AmphoraObject(a)
	if doc == nil {
		return nil, nil
	}
	r, err := newRow(views.KindAmphora, a.Id, m.st.ID(), a.ProjectId, a.LoadbalancerId, a.LoadbalancerId, doc, nil)
	if err != nil {
		return nil, err
	}
	r.name = a.Role
	return []row{r}, nil
}

// projectModel is the quota of one project.
type projectModel struct {
	id string
	st *project.State
}

func (m *projectModel) doc() views.Object {
	var q *eventsv1.Quota
	if m.st.HasQuota() {
		q = m.st.Quota()
	}
	return views.QuotaListItem(m.id, q)
}

func (m *projectModel) apply(_ *eventsv1.Envelope, payload proto.Message, audit auditMode) ([]auditItem, error) {
	if _, quota := payload.(*eventsv1.QuotaUsageChanged); quota {
		audit = auditNone
	}
	var before []byte
	var err error
	if audit == auditRendered && m.st.Version > 0 {
		if before, err = marshal(m.doc()); err != nil {
			return nil, err
		}
	}
	if err := m.st.Apply(payload); err != nil {
		return nil, err
	}
	switch audit {
	case auditNone:
		return nil, nil
	case auditSubjects:
		return []auditItem{{kind: views.KindQuota, id: m.id}}, nil
	}
	after, err := marshal(m.doc())
	if err != nil {
		return nil, err
	}
	return []auditItem{{kind: views.KindQuota, id: m.id, before: before, after: after}}, nil
}

func (m *projectModel) usage() []usageRecord { return nil }

func (m *projectModel) rows() ([]row, error) {
	r, err := newRow(views.KindQuota, m.id, m.id, m.id, "", "", m.doc(), nil)
	if err != nil {
		return nil, err
	}
	return []row{r}, nil
}

// catalogModel is the catalog of flavors and availability zones.
type catalogModel struct{ st *catalog.State }

func (m *catalogModel) subject(payload proto.Message) (subject, bool) {
	switch e := payload.(type) {
	case *eventsv1.FlavorProfileCreated:
		return subject{views.KindFlavorProfile, e.GetFlavorProfile().GetId()}, true
	case *eventsv1.FlavorProfileUpdated:
		return subject{views.KindFlavorProfile, e.GetFlavorProfile().GetId()}, true
	case *eventsv1.FlavorProfileDeleted:
		return subject{views.KindFlavorProfile, e.GetId()}, true
	case *eventsv1.FlavorCreated:
		return subject{views.KindFlavor, e.GetFlavor().GetId()}, true
	case *eventsv1.FlavorUpdated:
		return subject{views.KindFlavor, e.GetFlavor().GetId()}, true
	case *eventsv1.FlavorDeleted:
		return subject{views.KindFlavor, e.GetId()}, true
	case *eventsv1.AvailabilityZoneProfileCreated:
		return subject{views.KindAvailabilityZoneProfile, e.GetAvailabilityZoneProfile().GetId()}, true
	case *eventsv1.AvailabilityZoneProfileUpdated:
		return subject{views.KindAvailabilityZoneProfile, e.GetAvailabilityZoneProfile().GetId()}, true
	case *eventsv1.AvailabilityZoneProfileDeleted:
		return subject{views.KindAvailabilityZoneProfile, e.GetId()}, true
	case *eventsv1.AvailabilityZoneCreated:
		return subject{views.KindAvailabilityZone, e.GetAvailabilityZone().GetName()}, true
	case *eventsv1.AvailabilityZoneUpdated:
		return subject{views.KindAvailabilityZone, e.GetAvailabilityZone().GetName()}, true
	case *eventsv1.AvailabilityZoneDeleted:
		return subject{views.KindAvailabilityZone, e.GetName()}, true
	}
	return subject{}, false
}

func (m *catalogModel) render(s subject) views.Object {
	switch s.kind {
	case views.KindFlavor:
		if f := m.st.Flavor(s.id); f != nil {
			return views.Flavor(f)
		}
	case views.KindFlavorProfile:
		if p := m.st.FlavorProfile(s.id); p != nil {
			return views.FlavorProfile(p)
		}
	case views.KindAvailabilityZone:
		if z := m.st.AvailabilityZone(s.id); z != nil {
			return views.AvailabilityZone(z)
		}
	case views.KindAvailabilityZoneProfile:
		if p := m.st.AvailabilityZoneProfile(s.id); p != nil {
			return views.AvailabilityZoneProfile(p)
		}
	}
	return nil
}

func (m *catalogModel) apply(_ *eventsv1.Envelope, payload proto.Message, audit auditMode) ([]auditItem, error) {
	s, ok := m.subject(payload)
	if !ok {
		audit = auditNone
	}
	var before []byte
	var err error
	if audit == auditRendered {
		if before, err = marshal(m.render(s)); err != nil {
			return nil, err
		}
	}
	if err := m.st.Apply(payload); err != nil {
		return nil, err
	}
	switch audit {
	case auditNone:
		return nil, nil
	case auditSubjects:
		return []auditItem{{kind: s.kind, id: s.id}}, nil
	}
	after, err := marshal(m.render(s))
	if err != nil {
		return nil, err
	}
	return []auditItem{{kind: s.kind, id: s.id, before: before, after: after}}, nil
}

func (m *catalogModel) usage() []usageRecord { return nil }

func (m *catalogModel) rows() ([]row, error) {
	var out []row
	add := func(kind views.Kind, id string, doc views.Object) error {
		r, err := newRow(kind, id, events.CatalogID, "", "", "", doc, nil)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}
	for _, p := range m.st.FlavorProfiles() {
		if err := add(views.KindFlavorProfile, p.Id, views.FlavorProfile(p)); err != nil {
			return nil, err
		}
	}
	for _, f := range m.st.Flavors() {
		if err := add(views.KindFlavor, f.Id, views.Flavor(f)); err != nil {
			return nil, err
		}
	}
	for _, p := range m.st.AvailabilityZoneProfiles() {
		if err := add(views.KindAvailabilityZoneProfile, p.Id, views.AvailabilityZoneProfile(p)); err != nil {
			return nil, err
		}
	}
	for _, z := range m.st.AvailabilityZones() {
		if err := add(views.KindAvailabilityZone, z.Name, views.AvailabilityZone(z)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
