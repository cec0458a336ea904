package handler

import (
	"container/list"
	"sync"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// streamCache keeps the stored envelopes of recently used streams, so that
// loading an aggregate reads only the events appended since (one indexed
// query) instead of its whole stream. Entries are immutable slices; the
// store stays the source of truth, since every load asks it for anything
// newer than the cached version.
type streamCache struct {
	mu      sync.Mutex
	max     int
	order   *list.List // front = most recently used; values are keys
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	envs []*eventsv1.Envelope
	elem *list.Element
}

func newStreamCache(max int) *streamCache {
	return &streamCache{max: max, order: list.New(), entries: map[string]*cacheEntry{}}
}

// get returns the cached envelopes of a stream (nil when unknown).
func (c *streamCache) get(key string) []*eventsv1.Envelope {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e.elem)
	return e.envs
}

// put stores the envelopes of a stream if they are newer than what is cached.
func (c *streamCache) put(key string, envs []*eventsv1.Envelope) {
	if c == nil || len(envs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		if len(envs) > len(e.envs) {
			e.envs = envs
		}
		c.order.MoveToFront(e.elem)
		return
	}
	c.entries[key] = &cacheEntry{envs: envs, elem: c.order.PushFront(key)}
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(string))
	}
}
