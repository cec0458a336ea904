package heartbeat

import (
	"sync"
	"time"
)

// seqCache remembers, per amphora, the highest accepted sequence number. It
// holds at most capacity entries; when full, the entry least recently
// accepted is evicted. An entry older than ttl (if ttl > 0) is treated as
// absent so that an agent whose seq restarted at 0 is accepted again.
type seqCache struct {
	mu       sync.Mutex
	capacity int
	ttl      time.Duration
	entries  map[string]*seqEntry
	// head is the most recently accepted entry; head.prev is the least
	// recently accepted one (circular list).
	head      *seqEntry
	evictions uint64
}

type seqEntry struct {
	id         string
	seq        uint64
	at         time.Time
	prev, next *seqEntry
}

func newSeqCache(capacity int, ttl time.Duration) *seqCache {
	return &seqCache{capacity: max(capacity, 1), ttl: ttl, entries: make(map[string]*seqEntry)}
}

// accept reports whether seq is newer than anything accepted for id within
// the TTL, and records it if so. It is safe for concurrent use.
func (c *seqCache) accept(id string, seq uint64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		fresh := c.ttl <= 0 || now.Sub(e.at) <= c.ttl
		if fresh && seq <= e.seq {
			return false
		}
		e.seq, e.at = seq, now
		c.unlink(e)
		c.pushFront(e)
		return true
	}
	if len(c.entries) >= c.capacity {
		oldest := c.head.prev
		c.unlink(oldest)
		delete(c.entries, oldest.id)
		c.evictions++
	}
	e := &seqEntry{id: id, seq: seq, at: now}
	c.entries[id] = e
	c.pushFront(e)
	return true
}

func (c *seqCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *seqCache) pushFront(e *seqEntry) {
	if c.head == nil {
		e.prev, e.next = e, e
	} else {
		e.next, e.prev = c.head, c.head.prev
		c.head.prev.next = e
		c.head.prev = e
	}
	c.head = e
}

func (c *seqCache) unlink(e *seqEntry) {
	if e.next == e {
		c.head = nil
	} else {
		e.prev.next, e.next.prev = e.next, e.prev
		if c.head == e {
			c.head = e.next
		}
	}
	e.prev, e.next = nil, nil
}
