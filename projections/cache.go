package projections

import (
	"container/list"
	"sync"
)

// cached is the projection state of one aggregate at a version, with the
// rows rendered from it (nil when not rendered).
type cached struct {
	key     string
	version int64
	model   model
	rows    map[rowKey]row
	// baseRows are the rows the read model holds for this aggregate while a
	// transaction evolves the entry (nil: unknown, rewrite them all).
	baseRows map[rowKey]row
}

// stateCache is an LRU of recent aggregate states. An entry is taken out
// while a transaction evolves it and put back afterwards, so no two
// goroutines ever share a model. Correctness never depends on it: a miss
// (or an entry at another version) replays the stream from the store.
type stateCache struct {
	mu      sync.Mutex
	max     int
	order   *list.List // front = most recent; values are *cached
	entries map[string]*list.Element
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, order: list.New(), entries: map[string]*list.Element{}}
}

// take removes and returns the entry of key if its version is at most
// version (an older entry can be brought forward with newer events).
func (c *stateCache) take(key string, version int64) *cached {
	if c == nil || c.max <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*cached)
	if e.version > version {
		return nil
	}
	c.order.Remove(el)
	delete(c.entries, key)
	return e
}

// put stores an entry unless a newer one is already there.
func (c *stateCache) put(e *cached) {
	if c == nil || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok {
		if el.Value.(*cached).version >= e.version {
			return
		}
		c.order.Remove(el)
	}
	c.entries[e.key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*cached).key)
	}
}

func (c *stateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
