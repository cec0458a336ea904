# Builds heartbeat datagrams the way the amphora agent does (json -> zlib level 9 -> + HMAC-SHA256).
import hashlib
import hmac
import json
import zlib

KEY = b"insecure-test-key"
AMP = "8f1c2b1e-0c6a-4f55-9d1b-3a2e6c1d7f00"
L1 = "11111111-1111-1111-1111-111111111111"
L2 = "55555555-5555-5555-5555-555555555555"
P1 = "22222222-2222-2222-2222-222222222222"
P2 = "66666666-6666-6666-6666-666666666666"
M1 = "33333333-3333-3333-3333-333333333333"
M2 = "44444444-4444-4444-4444-444444444444"
M3 = "77777777-7777-7777-7777-777777777777"
M4 = "88888888-8888-8888-8888-888888888888"

MSGS = {
    "v1": {"id": AMP, "seq": 1, "listeners": {L1: {
        "status": "OPEN", "stats": {"conns": 3, "totconns": 42, "rx": 1000, "tx": 2000, "ereq": 1},
        "pools": {P1: {"status": "UP", "members": {M1: "UP", M2: "DOWN"}}}}}},
    "v2": {"id": AMP, "seq": 67, "ver": 2,
           "listeners": {L1: {"status": "FULL", "stats": {"tx": 5, "rx": 6, "conns": 7, "totconns": 8, "ereq": 9}}},
           "pools": {P1 + ":" + L1: {"status": "UP", "members": {M1: "no check"}}}},
    "v3": {"id": AMP, "seq": 68, "ver": 3,
           "listeners": {L1: {"status": "OPEN", "stats": {"tx": 100, "rx": 200, "conns": 4, "totconns": 10, "ereq": 0}},
                         L2: {"status": "OPEN", "stats": {"tx": 0, "rx": 0, "conns": 0, "totconns": 0, "ereq": 0}}},
           "pools": {P1 + ":" + L1: {"status": "DOWN", "members": {M1: "DOWN 1/3", M2: "DRAIN"}},
                     P2: {"status": "UP", "members": {M3: "UP", M4: "MAINT"}}}},
}


def main():
    for name, msg in MSGS.items():
        body = zlib.compress(json.dumps(msg).encode("utf-8"), 9)
        digest = hmac.new(KEY, body, hashlib.sha256).hexdigest().encode("ascii")
        with open(f"python_{name}_hex.bin", "wb") as f:
            f.write(body + digest)
    body = zlib.compress(json.dumps(MSGS["v1"]).encode("utf-8"), 9)
    with open("python_v1_raw.bin", "wb") as f:
        f.write(body + hmac.new(KEY, body, hashlib.sha256).digest())


if __name__ == "__main__":
    main()
