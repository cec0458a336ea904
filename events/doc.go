// Package events holds Ostia's wire contracts: the registry from stable event
// names ("loadbalancer.created.v1") to protobuf payload types, the envelope
// helpers and the Kafka topic names.
//
// The payload schemas live in proto/ostia/events/v1. Each payload message
// declares its wire name and aggregate type as protobuf options, so the name
// on the wire never depends on a Go or protobuf type name.
package events
