#!/usr/bin/env python3
"""Smoke check of a running peer (standard library only): the load generator's flow.

Usage: smoke.py BASE_URL PASSWORD [USER_INDEX]   (users seeded by bench_seed, prefix "peer")

Checks, for user {USER_INDEX} (default 0; each run needs a user not signed in within 90 s):
login -> 401 with a pending mfa_authenticate flow; 2fa/authenticate -> 200 with a new session
token; GET auth/session with it -> 200; the same code again in a new login -> 400 (replay).
"""
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.error
import urllib.request

API = "/_allauth/app/v1"


def totp_secret(i: int) -> str:
    """The seeded secret of user i (see peer/management/commands/bench_seed.py)."""
    return base64.b32encode(hashlib.sha256(f"usher-bench-totp-{i}".encode()).digest()[:20]).decode()


def totp_now(secret: str) -> str:
    """RFC 6238: SHA-1, 6 digits, 30-second steps."""
    mac = hmac.new(base64.b32decode(secret), struct.pack(">Q", int(time.time()) // 30), "sha1")
    d = mac.digest()
    o = d[-1] & 15
    return f"{(struct.unpack('>I', d[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def call(base, method, path, body=None, token=None, xff="192.0.2.1"):
    """One request; returns (status, parsed JSON body)."""
    headers = {"Content-Type": "application/json", "X-Forwarded-For": xff}
    if token:
        headers["X-Session-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + API + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main():
    base, password = sys.argv[1], sys.argv[2]
    i = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    email, code = f"peer{i}@bench.test", totp_now(totp_secret(i))

    status, body = call(base, "POST", "/auth/login", {"email": email, "password": password})
    pending = [f["id"] for f in body["data"]["flows"] if f.get("is_pending")]
    assert status == 401 and pending == ["mfa_authenticate"], (status, body)
    token = body["meta"]["session_token"]

    status, body = call(base, "POST", "/auth/2fa/authenticate", {"code": code}, token=token)
    assert status == 200 and body["meta"]["is_authenticated"], (status, body)
    token = body["meta"]["session_token"]  # a new token: the one from login is now void

    status, body = call(base, "GET", "/auth/session", token=token)
    assert status == 200 and body["data"]["user"]["email"] == email, (status, body)

    status, body = call(base, "POST", "/auth/login", {"email": email, "password": password})
    assert status == 401, (status, body)
    replay = call(base, "POST", "/auth/2fa/authenticate", {"code": code},
                  token=body["meta"]["session_token"])
    assert replay[0] == 400, replay
    why = replay[1]["errors"][0]["code"]
    print(f"ok: {email} signed in with TOTP; the replayed code was refused ({why})")


if __name__ == "__main__":
    main()
