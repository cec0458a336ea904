package heartbeat

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// Typed decode errors. Decode wraps exactly one of them (test with errors.Is).
var (
	// ErrDigest: the packet is not authenticated by the key (neither a hex nor
	// a raw HMAC-SHA256 trailer matches), or no key was configured.
	ErrDigest = errors.New("heartbeat: HMAC digest mismatch")
	// ErrCompression: the authenticated payload is not a valid zlib stream.
	ErrCompression = errors.New("heartbeat: invalid zlib payload")
	// ErrTooLarge: the packet or its inflated payload exceeds the size bound.
	ErrTooLarge = errors.New("heartbeat: message too large")
	// ErrMalformed: the packet is too short, or the payload is not a
	// well-formed heartbeat document (JSON syntax, types or shape).
	ErrMalformed = errors.New("heartbeat: malformed message")
)

const (
	// HexDigestSize is the length of the lowercase hex HMAC-SHA256 trailer
	// current amphora agents append.
	HexDigestSize = 2 * sha256.Size
	// RawDigestSize is the length of the legacy binary HMAC-SHA256 trailer.
	RawDigestSize = sha256.Size
	// DefaultMaxSize is the default bound on the inflated JSON size (and on
	// the packet size) used when Decode or NewCodec get maxSize <= 0.
	DefaultMaxSize = 1 << 20
	// compressionLevel matches the amphora agent (zlib level 9).
	compressionLevel = zlib.BestCompression
)

// Codec encodes and decodes heartbeat datagrams for one key. It keeps pools of
// inflaters, deflaters and HMAC states, so reusing one Codec is much cheaper
// than the package-level Encode/Decode. A Codec is safe for concurrent use.
type Codec struct {
	key     []byte
	maxSize int

	macs      sync.Pool // hash.Hash
	inflaters sync.Pool // *inflater
	deflaters sync.Pool // *deflater
}

type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser // implements zlib.Resetter; nil until first use
	out bytes.Buffer
}

type deflater struct {
	zw  *zlib.Writer
	out bytes.Buffer
}

// NewCodec returns a Codec for key. maxSize bounds both the datagram length and
// the inflated JSON size; <= 0 selects DefaultMaxSize. The key is copied.
func NewCodec(key []byte, maxSize int) (*Codec, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty HMAC key", ErrDigest)
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	c := &Codec{key: bytes.Clone(key), maxSize: maxSize}
	c.macs.New = func() any { return hmac.New(sha256.New, c.key) }
	return c, nil
}

// Encode builds a datagram for msg with key: zlib level 9 of the JSON document
// followed by the 64-byte lowercase hex HMAC-SHA256 of the compressed bytes.
func Encode(msg Message, key []byte) ([]byte, error) {
	c, err := NewCodec(key, 0)
	if err != nil {
		return nil, err
	}
	return c.Encode(msg)
}

// Decode verifies, inflates and parses one datagram. maxSize bounds both the
// datagram and the inflated JSON (<= 0 selects DefaultMaxSize). Errors wrap
// ErrDigest, ErrCompression, ErrTooLarge or ErrMalformed.
func Decode(packet []byte, key []byte, maxSize int) (Message, error) {
	c, err := NewCodec(key, maxSize)
	if err != nil {
		return Message{}, err
	}
	return c.Decode(packet)
}

// Encode builds a datagram for msg; see the package-level Encode. The message
// must satisfy Message.Validate.
func (c *Codec) Encode(msg Message) ([]byte, error) {
	if err := msg.Validate(); err != nil {
		return nil, fmt.Errorf("heartbeat: encode: %w", err)
	}
	doc, err := json.Marshal(toWire(&msg))
	if err != nil {
		return nil, fmt.Errorf("heartbeat: encode: %w", err)
	}
	if len(doc) > c.maxSize {
		return nil, fmt.Errorf("%w: %d byte document exceeds %d", ErrTooLarge, len(doc), c.maxSize)
	}

	d, _ := c.deflaters.Get().(*deflater)
	if d == nil {
		d = &deflater{}
		d.zw, err = zlib.NewWriterLevel(&d.out, compressionLevel)
		if err != nil {
			return nil, fmt.Errorf("heartbeat: encode: %w", err)
		}
	} else {
		d.out.Reset()
		d.zw.Reset(&d.out)
	}
	defer c.deflaters.Put(d)
	if _, err := d.zw.Write(doc); err != nil {
		return nil, fmt.Errorf("heartbeat: encode: deflate: %w", err)
	}
	if err := d.zw.Close(); err != nil {
		return nil, fmt.Errorf("heartbeat: encode: deflate: %w", err)
	}

	n := d.out.Len()
	packet := make([]byte, n+HexDigestSize)
	copy(packet, d.out.Bytes())
	var sum [sha256.Size]byte
	c.sum(sum[:0], packet[:n])
	hex.Encode(packet[n:], sum[:])
	if len(packet) > c.maxSize {
		return nil, fmt.Errorf("%w: %d byte packet exceeds %d", ErrTooLarge, len(packet), c.maxSize)
	}
	return packet, nil
}

// Decode verifies, inflates and parses one datagram; see the package-level
// Decode. The packet is not retained.
func (c *Codec) Decode(packet []byte) (Message, error) {
	if len(packet) > c.maxSize {
		return Message{}, fmt.Errorf("%w: %d byte packet exceeds %d", ErrTooLarge, len(packet), c.maxSize)
	}
	payload, err := c.verify(packet)
	if err != nil {
		return Message{}, err
	}
	in, _ := c.inflaters.Get().(*inflater)
	if in == nil {
		in = &inflater{}
	}
	defer c.inflaters.Put(in)
	doc, err := c.inflate(in, payload)
	if err != nil {
		return Message{}, err
	}
	msg, err := parseMessage(doc)
	if err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return msg, nil
}

// verify checks the HMAC trailer and returns the compressed payload. The hex
// trailer of current agents is tried first, then the legacy raw trailer; both
// comparisons are constant-time.
func (c *Codec) verify(packet []byte) ([]byte, error) {
	if len(packet) <= RawDigestSize {
		return nil, fmt.Errorf("%w: %d byte packet is too short", ErrMalformed, len(packet))
	}
	var sum [sha256.Size]byte
	if len(packet) > HexDigestSize {
		payload := packet[:len(packet)-HexDigestSize]
		var want [HexDigestSize]byte
		hex.Encode(want[:], c.sum(sum[:0], payload))
		if subtle.ConstantTimeCompare(want[:], packet[len(payload):]) == 1 {
			return payload, nil
		}
	}
	payload := packet[:len(packet)-RawDigestSize]
	if hmac.Equal(c.sum(sum[:0], payload), packet[len(payload):]) {
		return payload, nil
	}
	return nil, ErrDigest
}

func (c *Codec) sum(dst, data []byte) []byte {
	mac := c.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(data)
	dst = mac.Sum(dst)
	c.macs.Put(mac)
	return dst
}

// inflate decompresses payload into in.out, reading at most maxSize+1 bytes of
// output so that a zlib bomb costs no more than maxSize of memory and work.
// Trailing bytes after the zlib stream are rejected.
func (c *Codec) inflate(in *inflater, payload []byte) ([]byte, error) {
	in.src.Reset(payload)
	in.out.Reset()
	if in.zr == nil {
		zr, err := zlib.NewReader(&in.src)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCompression, err)
		}
		in.zr = zr
	} else if err := in.zr.(zlib.Resetter).Reset(&in.src, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompression, err)
	}
	limit := int64(c.maxSize)
	n, err := in.out.ReadFrom(io.LimitReader(in.zr, limit+1))
	if n > limit {
		return nil, fmt.Errorf("%w: inflated payload exceeds %d bytes", ErrTooLarge, c.maxSize)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompression, err)
	}
	if in.src.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after zlib stream", ErrCompression, in.src.Len())
	}
	// Large one-off buffers are not kept in the pool.
	if in.out.Cap() > 64<<10 {
		doc := bytes.Clone(in.out.Bytes())
		in.out = bytes.Buffer{}
		return doc, nil
	}
	return in.out.Bytes(), nil
}

// Wire representation used for encoding; field order mirrors the agent.
type wireMessage struct {
	ID        string                  `json:"id"`
	Seq       uint64                  `json:"seq"`
	Ver       int                     `json:"ver,omitempty"`
	Listeners map[string]wireListener `json:"listeners"`
	Pools     map[string]wirePool     `json:"pools,omitzero"`
}

type wireListener struct {
	Status string              `json:"status"`
	Stats  wireStats           `json:"stats"`
	Pools  map[string]wirePool `json:"pools,omitzero"`
}

type wireStats struct {
	TX       uint64 `json:"tx"`
	RX       uint64 `json:"rx"`
	Conns    uint64 `json:"conns"`
	TotConns uint64 `json:"totconns"`
	EReq     uint64 `json:"ereq"`
}

type wirePool struct {
	Status  string            `json:"status"`
	Members map[string]string `json:"members"`
}

func toWire(m *Message) wireMessage {
	w := wireMessage{ID: m.ID, Seq: m.Seq, Listeners: make(map[string]wireListener, len(m.Listeners))}
	if m.Version >= Version2 {
		w.Ver = m.Version
		w.Pools = wirePools(m.Pools)
		if w.Pools == nil {
			w.Pools = map[string]wirePool{}
		}
	}
	for id, l := range m.Listeners {
		w.Listeners[id] = wireListener{
			Status: l.Status,
			Stats:  wireStats(l.Stats),
			Pools:  wirePools(l.Pools),
		}
	}
	return w
}

func wirePools(pools map[string]Pool) map[string]wirePool {
	if len(pools) == 0 {
		return nil
	}
	out := make(map[string]wirePool, len(pools))
	for id, p := range pools {
		members := p.Members
		if members == nil {
			members = map[string]string{}
		}
		out[id] = wirePool{Status: p.Status, Members: members}
	}
	return out
}
