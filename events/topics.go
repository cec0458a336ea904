package events

// Aggregate types. Each has its own stream per aggregate id and its own
// Kafka topic.
const (
	AggregateLoadBalancer = "loadbalancer"
	AggregateAmphora      = "amphora"
	AggregateProject      = "project"
	AggregateCatalog      = "catalog"
	AggregateSaga         = "saga"
)

// AggregateTypes lists every aggregate type, in a fixed order.
func AggregateTypes() []string {
	return []string{AggregateLoadBalancer, AggregateAmphora, AggregateProject, AggregateCatalog, AggregateSaga}
}

// Topic is the Kafka topic of an aggregate type, e.g. "ostia.loadbalancer.v1".
// Messages are keyed by aggregate id, so one aggregate's events stay in order
// on one partition. The value is a serialized Envelope.
func Topic(aggregateType string) string { return "ostia." + aggregateType + ".v1" }

// Topics lists the topics of every aggregate type.
func Topics() []string {
	types := AggregateTypes()
	out := make([]string, len(types))
	for i, a := range types {
		out[i] = Topic(a)
	}
	return out
}

// CatalogID is the id of the single catalog aggregate (flavors, flavor
// profiles, availability zones and their profiles).
const CatalogID = "catalog"
