package heartbeat

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode along three paths: as a raw
// datagram (exercises the envelope), as a correctly signed payload (exercises
// zlib), and as a correctly signed and compressed document (exercises the JSON
// parser and the shape checks). Decode must never panic, must only return the
// typed errors, and whatever it accepts must survive View and an Encode/Decode
// round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, doc := range []string{fixtureV1, fixtureV2, fixtureV3,
		`{"id": "a", "seq": 1, "listeners": {}}`,
		`{"id": "a", "seq": 1, "ver": 3, "listeners": {}, "pools": {"p": {"status": "UP", "members": {"m": "UP"}}}}`,
		`{"id": "a", "seq": 1, "ver": 2, "listeners": {}, "pools": {"p:l": {"status": "UP", "members": {}}}, "x": [1, {"y": null}]}`,
	} {
		f.Add([]byte(doc))
		f.Add(seal(f, doc))
		f.Add(deflate(f, []byte(doc)))
	}
	for _, bp := range badPackets(f) {
		if len(bp.packet) < 4<<10 {
			f.Add(bp.packet)
		}
	}
	const maxSize = 64 << 10
	codec, err := NewCodec(testKey, maxSize)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(packet []byte) {
			msg, err := codec.Decode(packet)
			if err != nil {
				if !errors.Is(err, ErrDigest) && !errors.Is(err, ErrCompression) &&
					!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("untyped error: %v", err)
				}
				return
			}
			_ = msg.View()
			again, err := codec.Encode(msg)
			if err != nil {
				t.Fatalf("accepted message does not re-encode: %v (%+v)", err, msg)
			}
			back, err := codec.Decode(again)
			if err != nil {
				t.Fatalf("re-encoded message rejected: %v", err)
			}
			msg.RecvTime = 0 // Encode does not send recv_time
			if !reflect.DeepEqual(back, msg) {
				t.Fatalf("round trip changed the message\n got: %+v\nwant: %+v", back, msg)
			}
		}
		check(data)
		check(signHex(testKey, data))
		check(signRaw(testKey, data))
		if len(data) <= maxSize {
			// Differential check of the JSON scanner against encoding/json:
			// whatever Decode accepts must be valid JSON.
			packet := signHex(testKey, deflate(t, data))
			if _, err := codec.Decode(packet); err == nil && !json.Valid(data) {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			check(packet)
		}
	})
}
