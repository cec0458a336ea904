package heartbeat

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var testKey = []byte("insecure-test-key")

const (
	fxAmp = "8f1c2b1e-0c6a-4f55-9d1b-3a2e6c1d7f00"
	fxL1  = "11111111-1111-1111-1111-111111111111"
	fxL2  = "55555555-5555-5555-5555-555555555555"
	fxP1  = "22222222-2222-2222-2222-222222222222"
	fxP2  = "66666666-6666-6666-6666-666666666666"
	fxM1  = "33333333-3333-3333-3333-333333333333"
	fxM2  = "44444444-4444-4444-4444-444444444444"
	fxM3  = "77777777-7777-7777-7777-777777777777"
	fxM4  = "88888888-8888-8888-8888-888888888888"
)

// Hand-written documents following heartbeat.md §3 (same content as the
// Python fixtures in testdata).
var (
	fixtureV1 = `{"id": "` + fxAmp + `", "seq": 1, "listeners": {"` + fxL1 + `": {"status": "OPEN",
	  "stats": {"conns": 3, "totconns": 42, "rx": 1000, "tx": 2000, "ereq": 1},
	  "pools": {"` + fxP1 + `": {"status": "UP", "members": {"` + fxM1 + `": "UP", "` + fxM2 + `": "DOWN"}}}}}}`
	fixtureV2 = `{"id": "` + fxAmp + `", "seq": 67, "ver": 2,
	  "listeners": {"` + fxL1 + `": {"status": "FULL", "stats": {"tx": 5, "rx": 6, "conns": 7, "totconns": 8, "ereq": 9}}},
	  "pools": {"` + fxP1 + `:` + fxL1 + `": {"status": "UP", "members": {"` + fxM1 + `": "no check"}}}}`
	fixtureV3 = `{"id": "` + fxAmp + `", "seq": 68, "ver": 3,
	  "listeners": {"` + fxL1 + `": {"status": "OPEN", "stats": {"tx": 100, "rx": 200, "conns": 4, "totconns": 10, "ereq": 0}},
	                "` + fxL2 + `": {"status": "OPEN", "stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}},
	  "pools": {"` + fxP1 + `:` + fxL1 + `": {"status": "DOWN", "members": {"` + fxM1 + `": "DOWN 1/3", "` + fxM2 + `": "DRAIN"}},
	            "` + fxP2 + `": {"status": "UP", "members": {"` + fxM3 + `": "UP", "` + fxM4 + `": "MAINT"}}}}`
)

func wantViewV1() View {
	return View{
		AmphoraID: fxAmp, Seq: 1, Version: 1,
		Listeners: map[string]ListenerHealth{fxL1: {Status: "OPEN", Stats: Counters{
			BytesIn: 1000, BytesOut: 2000, ActiveConnections: 3, TotalConnections: 42, RequestErrors: 1}}},
		Pools: map[string]PoolHealth{fxP1: {Status: "UP", Listeners: []string{fxL1},
			Members: map[string]string{fxM1: "UP", fxM2: "DOWN"}}},
	}
}

func wantViewV2() View {
	return View{
		AmphoraID: fxAmp, Seq: 67, Version: 2,
		Listeners: map[string]ListenerHealth{fxL1: {Status: "FULL", Stats: Counters{
			BytesIn: 6, BytesOut: 5, ActiveConnections: 7, TotalConnections: 8, RequestErrors: 9}}},
		Pools: map[string]PoolHealth{fxP1: {Status: "UP", Listeners: []string{fxL1},
			Members: map[string]string{fxM1: "no check"}}},
	}
}

func wantViewV3() View {
	return View{
		AmphoraID: fxAmp, Seq: 68, Version: 3, DeltaCounters: true,
		Listeners: map[string]ListenerHealth{
			fxL1: {Status: "OPEN", Stats: Counters{BytesIn: 200, BytesOut: 100, ActiveConnections: 4, TotalConnections: 10}},
			fxL2: {Status: "OPEN"},
		},
		Pools: map[string]PoolHealth{
			fxP1: {Status: "DOWN", Listeners: []string{fxL1}, Members: map[string]string{fxM1: "DOWN 1/3", fxM2: "DRAIN"}},
			fxP2: {Status: "UP", Members: map[string]string{fxM3: "UP", fxM4: "MAINT"}},
		},
	}
}

// deflate compresses doc like the agent (zlib level 9), independently of
// Codec.Encode.
func deflate(t testing.TB, doc []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(doc); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signHex appends the lowercase hex HMAC-SHA256 of payload.
func signHex(key, payload []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	return append(bytes.Clone(payload), hex.EncodeToString(mac.Sum(nil))...)
}

// signRaw appends the raw HMAC-SHA256 of payload (legacy agents).
func signRaw(key, payload []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	return mac.Sum(bytes.Clone(payload))
}

// seal builds a valid datagram around a JSON document.
func seal(t testing.TB, doc string) []byte {
	t.Helper()
	return signHex(testKey, deflate(t, []byte(doc)))
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeVersions(t *testing.T) {
	cases := []struct {
		name   string
		packet func(t *testing.T) []byte
		want   View
	}{
		{"v1 hand-built", func(t *testing.T) []byte { return seal(t, fixtureV1) }, wantViewV1()},
		{"v2 hand-built", func(t *testing.T) []byte { return seal(t, fixtureV2) }, wantViewV2()},
		{"v3 hand-built", func(t *testing.T) []byte { return seal(t, fixtureV3) }, wantViewV3()},
		{"v1 hand-built raw digest", func(t *testing.T) []byte {
			return signRaw(testKey, deflate(t, []byte(fixtureV1)))
		}, wantViewV1()},
		{"v1 python", func(t *testing.T) []byte { return readFixture(t, "python_v1_hex.bin") }, wantViewV1()},
		{"v1 python raw digest", func(t *testing.T) []byte { return readFixture(t, "python_v1_raw.bin") }, wantViewV1()},
		{"v2 python", func(t *testing.T) []byte { return readFixture(t, "python_v2_hex.bin") }, wantViewV2()},
		{"v3 python", func(t *testing.T) []byte { return readFixture(t, "python_v3_hex.bin") }, wantViewV3()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := Decode(tc.packet(t), testKey, 0)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := msg.View(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("view mismatch\n got: %+v\nwant: %+v", got, tc.want)
			}
			// Re-encoding yields an equivalent datagram.
			packet, err := Encode(msg, testKey)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := Decode(packet, testKey, 0)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			if !reflect.DeepEqual(again, msg) {
				t.Fatalf("round trip mismatch\n got: %+v\nwant: %+v", again, msg)
			}
		})
	}
}

func TestEncodeWireFormat(t *testing.T) {
	msg := Message{ID: fxAmp, Seq: 3, Version: 2, Listeners: map[string]Listener{
		fxL1: {Status: "OPEN"},
	}}
	packet, err := Encode(msg, testKey)
	if err != nil {
		t.Fatal(err)
	}
	payload, digest := packet[:len(packet)-HexDigestSize], packet[len(packet)-HexDigestSize:]
	if want := signHex(testKey, payload); !bytes.Equal(packet, want) {
		t.Fatalf("digest = %q, want lowercase hex HMAC of the compressed bytes", digest)
	}
	if payload[0] != 0x78 || payload[1] != 0xda {
		t.Fatalf("zlib header = %x, want 78da (level 9)", payload[:2])
	}
	zr, err := zlib.NewReader(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := doc.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	want := `{"id":"` + fxAmp + `","seq":3,"ver":2,"listeners":{"` + fxL1 +
		`":{"status":"OPEN","stats":{"tx":0,"rx":0,"conns":0,"totconns":0,"ereq":0}}},"pools":{}}`
	if doc.String() != want {
		t.Fatalf("document\n got: %s\nwant: %s", doc.String(), want)
	}

	// Version 1 omits "ver" and top-level "pools".
	msg = Message{ID: fxAmp, Listeners: map[string]Listener{}}
	packet, err = Encode(msg, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(packet, testKey, 0)
	if err != nil || got.Version != Version1 || got.Pools != nil {
		t.Fatalf("v1 round trip: %+v, %v", got, err)
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	pool := map[string]Pool{fxP1: {Status: "UP"}}
	cases := map[string]Message{
		"empty id":          {},
		"long id":           {ID: strings.Repeat("a", MaxIDLength+1)},
		"version 4":         {ID: fxAmp, Version: 4},
		"negative version":  {ID: fxAmp, Version: -1},
		"v1 top-level pool": {ID: fxAmp, Pools: pool},
		"v2 nested pool":    {ID: fxAmp, Version: 2, Listeners: map[string]Listener{fxL1: {Status: "OPEN", Pools: pool}}},
		"empty status":      {ID: fxAmp, Listeners: map[string]Listener{fxL1: {}}},
		"empty listener id": {ID: fxAmp, Listeners: map[string]Listener{"": {Status: "OPEN"}}},
		"empty pool status": {ID: fxAmp, Version: 3, Pools: map[string]Pool{fxP1: {}}},
		"empty member":      {ID: fxAmp, Version: 3, Pools: map[string]Pool{fxP1: {Status: "UP", Members: map[string]string{fxM1: ""}}}},
		"pool key suffix":   {ID: fxAmp, Version: 3, Pools: map[string]Pool{fxP1 + ":": {Status: "UP"}}},
	}
	for name, msg := range cases {
		if _, err := Encode(msg, testKey); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
	if _, err := Encode(Message{ID: fxAmp}, nil); !errors.Is(err, ErrDigest) {
		t.Errorf("empty key: err = %v, want ErrDigest", err)
	}
}

// zlibBomb returns a valid zlib stream inflating to mib MiB of zero bytes. It
// deflates two MiB with sync flushes and repeats the steady-state second
// chunk (it only back-references zeros), then fixes up the Adler-32 trailer,
// so building a large bomb costs no more than building a small one.
func zlibBomb(t testing.TB, mib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	step := func(last bool) []byte {
		before := buf.Len()
		var err error
		if last {
			err = zw.Close()
		} else if _, err = zw.Write(zeros); err == nil {
			err = zw.Flush()
		}
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(buf.Bytes()[before:])
	}
	head, chunk, tail := step(false), step(false), step(true)
	out := bytes.Clone(head)
	for range mib - 1 {
		out = append(out, chunk...)
	}
	// Adler-32 of n zero bytes: A stays 1, B = n mod 65521.
	n := uint32((uint64(mib) << 20) % 65521)
	out = append(out, tail[:len(tail)-4]...)
	return binary.BigEndian.AppendUint32(out, n<<16|1)
}

func TestZlibBombIsValid(t *testing.T) {
	bomb := zlibBomb(t, 16)
	zr, err := zlib.NewReader(bytes.NewReader(bomb))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil || n != 16<<20 {
		t.Fatalf("bomb inflates to %d bytes, %v", n, err)
	}
	t.Logf("%d byte bomb inflates to %d bytes", len(bomb), n)
}

// badPacket is a datagram that must be rejected, with the expected error.
type badPacket struct {
	name   string
	packet []byte
	want   error
}

// badPackets covers the rejection classes; all are at most a few KiB so that
// they fit a default receiver's MaxPacketSize.
func badPackets(t testing.TB) []badPacket {
	good := seal(t, fixtureV3)
	flip := func(i int) []byte {
		p := bytes.Clone(good)
		p[i] ^= 0x01
		return p
	}
	shape := func(doc string) []byte { return seal(t, doc) }
	out := []badPacket{
		{"wrong key", signHex([]byte("other-key"), deflate(t, []byte(fixtureV3))), ErrDigest},
		{"wrong key raw", signRaw([]byte("other-key"), deflate(t, []byte(fixtureV3))), ErrDigest},
		{"truncated tail", good[:len(good)-1], ErrDigest},
		{"truncated head", good[10:], ErrDigest},
		{"truncated to digest", good[len(good)-HexDigestSize:], ErrDigest},
		{"bit flip payload", flip(5), ErrDigest},
		{"bit flip digest", flip(len(good) - 3), ErrDigest},
		{"uppercase hex digest", append(bytes.Clone(good[:len(good)-HexDigestSize]), bytes.ToUpper(good[len(good)-HexDigestSize:])...), ErrDigest},
		{"empty", nil, ErrMalformed},
		{"tiny", []byte("hello"), ErrMalformed},
		{"32 bytes", bytes.Repeat([]byte{1}, RawDigestSize), ErrMalformed},
		{"not zlib", signHex(testKey, []byte(fixtureV3)), ErrCompression},
		{"zlib truncated", signHex(testKey, deflate(t, []byte(fixtureV3))[:40]), ErrCompression},
		{"zlib bad checksum", func() []byte {
			z := deflate(t, []byte(fixtureV3))
			z[len(z)-1] ^= 0xff
			return signHex(testKey, z)
		}(), ErrCompression},
		{"zlib trailing data", signHex(testKey, append(deflate(t, []byte(fixtureV3)), "junk"...)), ErrCompression},
		{"zlib bomb", signHex(testKey, zlibBomb(t, 16)), ErrTooLarge},
		{"not json", shape("this is not json"), ErrMalformed},
		{"json array", shape(`[1,2,3]`), ErrMalformed},
		{"json null", shape(`null`), ErrMalformed},
		{"empty object", shape(`{}`), ErrMalformed},
		{"invalid utf8", shape("{\"id\": \"\xff\", \"seq\": 1, \"listeners\": {}}"), ErrMalformed},
		{"trailing json", shape(`{"id": "a", "seq": 1, "listeners": {}} {}`), ErrMalformed},
		{"truncated json", shape(`{"id": "a", "seq": 1, "listeners": {`), ErrMalformed},
		{"missing id", shape(`{"seq": 1, "listeners": {}}`), ErrMalformed},
		{"missing seq", shape(`{"id": "a", "listeners": {}}`), ErrMalformed},
		{"missing listeners", shape(`{"id": "a", "seq": 1}`), ErrMalformed},
		{"null listeners", shape(`{"id": "a", "seq": 1, "listeners": null}`), ErrMalformed},
		{"id number", shape(`{"id": 5, "seq": 1, "listeners": {}}`), ErrMalformed},
		{"id null", shape(`{"id": null, "seq": 1, "listeners": {}}`), ErrMalformed},
		{"id empty", shape(`{"id": "", "seq": 1, "listeners": {}}`), ErrMalformed},
		{"id too long", shape(`{"id": "` + strings.Repeat("x", MaxIDLength+1) + `", "seq": 1, "listeners": {}}`), ErrMalformed},
		{"seq string", shape(`{"id": "a", "seq": "1", "listeners": {}}`), ErrMalformed},
		{"seq negative", shape(`{"id": "a", "seq": -1, "listeners": {}}`), ErrMalformed},
		{"seq float", shape(`{"id": "a", "seq": 1.5, "listeners": {}}`), ErrMalformed},
		{"seq exponent", shape(`{"id": "a", "seq": 1e3, "listeners": {}}`), ErrMalformed},
		{"seq overflow", shape(`{"id": "a", "seq": 18446744073709551616, "listeners": {}}`), ErrMalformed},
		{"duplicate id", shape(`{"id": "a", "id": "b", "seq": 1, "listeners": {}}`), ErrMalformed},
		{"case-folded key", shape(`{"ID": "a", "seq": 1, "listeners": {}}`), ErrMalformed},
		{"ver 4", shape(`{"id": "a", "seq": 1, "ver": 4, "listeners": {}, "pools": {}}`), ErrMalformed},
		{"ver 0", shape(`{"id": "a", "seq": 1, "ver": 0, "listeners": {}}`), ErrMalformed},
		{"ver string", shape(`{"id": "a", "seq": 1, "ver": "3", "listeners": {}, "pools": {}}`), ErrMalformed},
		{"v3 without pools", shape(`{"id": "a", "seq": 1, "ver": 3, "listeners": {}}`), ErrMalformed},
		{"v1 with top-level pools", shape(`{"id": "a", "seq": 1, "listeners": {}, "pools": {"p": {"status": "UP", "members": {}}}}`), ErrMalformed},
		{"v2 with nested pools", shape(`{"id": "a", "seq": 1, "ver": 2, "pools": {}, "listeners": {"l": {"status": "OPEN",
			"stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}, "pools": {"p": {"status": "UP", "members": {}}}}}}`), ErrMalformed},
		{"listeners array", shape(`{"id": "a", "seq": 1, "listeners": []}`), ErrMalformed},
		{"listener string", shape(`{"id": "a", "seq": 1, "listeners": {"l": "OPEN"}}`), ErrMalformed},
		{"listener empty id", shape(`{"id": "a", "seq": 1, "listeners": {"": {"status": "OPEN",
			"stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`), ErrMalformed},
		{"listener without stats", shape(`{"id": "a", "seq": 1, "listeners": {"l": {"status": "OPEN"}}}`), ErrMalformed},
		{"listener without status", shape(`{"id": "a", "seq": 1, "listeners": {"l": {
			"stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`), ErrMalformed},
		{"duplicate listener", shape(`{"id": "a", "seq": 1, "listeners": {
			"l": {"status": "OPEN", "stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}},
			"l": {"status": "OPEN", "stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`), ErrMalformed},
		{"stats missing ereq", shape(`{"id": "a", "seq": 1, "listeners": {"l": {"status": "OPEN",
			"stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0}}}}`), ErrMalformed},
		{"stats negative", shape(`{"id": "a", "seq": 1, "listeners": {"l": {"status": "OPEN",
			"stats": {"tx": -5, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`), ErrMalformed},
		{"stats string", shape(`{"id": "a", "seq": 1, "listeners": {"l": {"status": "OPEN",
			"stats": {"tx": "5", "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`), ErrMalformed},
		{"stats duplicate", shape(`{"id": "a", "seq": 1, "listeners": {"l": {"status": "OPEN",
			"stats": {"tx": 1, "tx": 2, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`), ErrMalformed},
		{"status null", shape(`{"id": "a", "seq": 1, "listeners": {"l": {"status": null,
			"stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}}}`), ErrMalformed},
		{"pool without members", shape(`{"id": "a", "seq": 1, "ver": 3, "listeners": {}, "pools": {"p:l": {"status": "UP"}}}`), ErrMalformed},
		{"pool members array", shape(`{"id": "a", "seq": 1, "ver": 3, "listeners": {}, "pools": {"p:l": {"status": "UP", "members": []}}}`), ErrMalformed},
		{"member status number", shape(`{"id": "a", "seq": 1, "ver": 3, "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {"m": 1}}}}`), ErrMalformed},
		{"member status empty", shape(`{"id": "a", "seq": 1, "ver": 3, "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {"m": ""}}}}`), ErrMalformed},
		{"pool key empty listener", shape(`{"id": "a", "seq": 1, "ver": 3, "listeners": {}, "pools": {"p:": {"status": "UP", "members": {}}}}`), ErrMalformed},
		{"pool key empty pool", shape(`{"id": "a", "seq": 1, "ver": 3, "listeners": {}, "pools": {":l": {"status": "UP", "members": {}}}}`), ErrMalformed},
		{"recv_time string", shape(`{"id": "a", "seq": 1, "listeners": {}, "recv_time": "now"}`), ErrMalformed},
		{"seq leading zero", shape(`{"id": "a", "seq": 01, "listeners": {}}`), ErrMalformed},
		{"seq plus sign", shape(`{"id": "a", "seq": +1, "listeners": {}}`), ErrMalformed},
		{"trailing comma", shape(`{"id": "a", "seq": 1, "listeners": {},}`), ErrMalformed},
		{"missing comma", shape(`{"id": "a" "seq": 1, "listeners": {}}`), ErrMalformed},
		{"single quotes", shape(`{'id': 'a', 'seq': 1, 'listeners': {}}`), ErrMalformed},
		{"NaN", shape(`{"id": "a", "seq": 1, "listeners": {}, "recv_time": NaN}`), ErrMalformed},
		{"raw control char", shape("{\"id\": \"a\tb\", \"seq\": 1, \"listeners\": {}}"), ErrMalformed},
		{"bad escape", shape(`{"id": "a\qb", "seq": 1, "listeners": {}}`), ErrMalformed},
		{"bad literal in unknown key", shape(`{"id": "a", "seq": 1, "listeners": {}, "x": tru}`), ErrMalformed},
		{"bad array in unknown key", shape(`{"id": "a", "seq": 1, "listeners": {}, "x": [1 2]}`), ErrMalformed},
		{"number then garbage", shape(`{"id": "a", "seq": 1x, "listeners": {}}`), ErrMalformed},
		{"unterminated string", shape(`{"id": "a`), ErrMalformed},
		{"deep nesting in unknown key", shape(`{"id": "a", "seq": 1, "listeners": {}, "x": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`), ErrMalformed},
	}
	return out
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range badPackets(t) {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := Decode(tc.packet, testKey, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %+v, %v; want %v", msg, err, tc.want)
			}
			for _, other := range []error{ErrDigest, ErrCompression, ErrTooLarge, ErrMalformed} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestDecodeSizeBounds(t *testing.T) {
	good := seal(t, fixtureV3)
	if _, err := Decode(good, testKey, len(good)-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("packet above maxSize: err = %v, want ErrTooLarge", err)
	}
	// The document inflates to len(fixtureV3) bytes: one less must fail,
	// exactly that must pass.
	if _, err := Decode(good, testKey, len(fixtureV3)-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("document above maxSize: err = %v, want ErrTooLarge", err)
	}
	if _, err := Decode(good, testKey, len(fixtureV3)); err != nil {
		t.Errorf("document at maxSize: %v", err)
	}
	if _, err := Decode(good, nil, 0); !errors.Is(err, ErrDigest) {
		t.Errorf("empty key: err = %v, want ErrDigest", err)
	}
}

func TestDecodeAcceptsUnknownKeysAndExplicitV1(t *testing.T) {
	doc := `{"future": {"a": [1, null, true]}, "id": "amp", "seq": 0, "ver": 1, "listeners": {"l": {"status": "OPEN",
	  "stats": {"tx": 1, "rx": 2, "conns": 3, "totconns": 4, "ereq": 5, "extra": "x"}, "more": 1}}, "recv_time": 1700000000.25}`
	msg, err := Decode(seal(t, doc), testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{ID: "amp", Version: 1, RecvTime: 1700000000.25, Listeners: map[string]Listener{
		"l": {Status: "OPEN", Stats: Stats{TX: 1, RX: 2, Conns: 3, TotConns: 4, EReq: 5}},
	}}
	if !reflect.DeepEqual(msg, want) {
		t.Fatalf("got %+v\nwant %+v", msg, want)
	}
}

func TestDecodeEscapedStrings(t *testing.T) {
	doc := `{"id": "amp-\u00e9\"\\x", "seq": 1, "listeners": {}, "x": ["\ud83d\ude00", {"y": [true, false, null, -1.5e-3, 0]}]}`
	msg, err := Decode(seal(t, doc), testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "amp-\u00e9\"\\x"; msg.ID != want {
		t.Fatalf("id = %q, want %q", msg.ID, want)
	}
}

func TestViewMergesPoolAcrossListeners(t *testing.T) {
	msg := Message{ID: "amp", Seq: 9, Version: 2, Pools: map[string]Pool{
		"p:l2": {Status: "UP", Members: map[string]string{"m1": "UP", "m2": "UP"}},
		"p:l1": {Status: "DOWN", Members: map[string]string{"m1": "DOWN", "m3": "no check"}},
		"q":    {Status: "UP", Members: map[string]string{}},
	}}
	want := map[string]PoolHealth{
		"p": {Status: "DOWN", Listeners: []string{"l1", "l2"}, Members: map[string]string{"m1": "DOWN", "m2": "UP", "m3": "no check"}},
		"q": {Status: "UP", Members: map[string]string{}},
	}
	for range 20 { // map order must not matter
		if got := msg.View().Pools; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	}
}

func TestCodecConcurrent(t *testing.T) {
	c, err := NewCodec(testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	packets := [][]byte{seal(t, fixtureV1), seal(t, fixtureV2), seal(t, fixtureV3)}
	bad := badPackets(t)
	done := make(chan error)
	for g := range 8 {
		go func() {
			for i := range 50 {
				if _, err := c.Decode(packets[(g+i)%3]); err != nil {
					done <- err
					return
				}
				if _, err := c.Decode(bad[(g+i)%len(bad)].packet); err == nil {
					done <- errors.New("bad packet accepted")
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
