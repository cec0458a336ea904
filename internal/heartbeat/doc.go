// Package heartbeat implements the amphora heartbeat channel of the health
// manager: the Octavia-compatible UDP wire format (Codec, Encode, Decode) and
// a UDP Receiver that authenticates, decodes and de-duplicates heartbeats and
// hands them to a sink.
//
// # Wire format
//
// A datagram is the zlib stream (level 9 on the amphora) of the UTF-8 JSON
// message, followed by the HMAC-SHA256 of the compressed bytes keyed with
// [health_manager] heartbeat_key. Current agents append the digest as 64
// lowercase hex characters; older ones appended the raw 32 bytes. Decode tries
// the hex form first and falls back to the raw form, comparing in constant
// time. Encode always writes the hex form.
//
// Message layouts (see Message and View):
//
//   - v1 (no "ver"): {"id","seq","listeners":{L:{"status","stats",
//     "pools":{P:{"status","members":{M:status}}}}}}, absolute counters.
//   - v2 ("ver":2): listeners without nested pools, top-level
//     "pools":{"P:L" or "P":{...}}, absolute counters.
//   - v3 ("ver":3): as v2, but tx, rx, totconns and ereq are deltas since the
//     previous heartbeat; conns stays absolute.
//
// Decode is defensive: the datagram and the inflated document are bounded
// (zip-bomb safe), and the JSON is checked strictly (types, required keys,
// duplicates, version-dependent shape). Unknown keys are ignored.
//
// # Receiver and replay protection
//
// The Receiver drops, and counts by reason, every datagram that fails
// verification or decoding, and every heartbeat whose seq is not higher than
// the highest seq it accepted for that amphora (reason "replay"). That state
// is per Receiver and in memory only; it is recorded before the sink runs, so
// a heartbeat whose sink call failed is not accepted again either. Because
// the amphora agent restarts seq at 0, an entry is forgotten SeqTTL after the
// amphora's last accepted heartbeat. Downstream consumers must therefore still
// ignore stale seq themselves and must not treat this filter as complete
// replay protection: the message carries no timestamp, so a captured
// heartbeat with a higher seq remains acceptable.
package heartbeat
