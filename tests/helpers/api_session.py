#!/usr/bin/env python3
"""Signs the first operator of a fresh `usher serve --test-clock` in through the JSON API, for
tools such as schemathesis that need a signed-in session.

    api_session.py setup   BASE_URL SETUP_LINK   creates the operator (the set-up form), sets up
                                                 an authenticator app through the API, and stores
                                                 its secret in STATE_FILE
    api_session.py sign-in BASE_URL              signs in (password, then the app's code) and
                                                 prints two lines: `Cookie: ...` and
                                                 `X-CSRF-Token: ...`, for schemathesis -H

STATE_FILE is $USHER_API_SESSION_STATE (default: ./api-session.json). Codes are computed with
pyotp at the server's test clock, which this script moves on 30 s (from the loopback address,
without cookies) so that each sign-in uses a fresh time step: a step is accepted only once.
Only the standard library and pyotp; cookies are handled by hand because the server's are
`Secure` and this talks plain http to 127.0.0.1.
"""

import http.client
import json
import os
import re
import sys
import time
import urllib.parse

import pyotp

EMAIL = "olive.schemathesis@example.org"
NAME = "Olive Operator"
PASSWORD = "Tr1cky-Horse-42-Api"
SESSION = "__Host-usher-session"
CSRF = "__Host-usher-csrf"


def fail(message):
    print(f"api_session.py: {message}", file=sys.stderr)
    sys.exit(1)


class Client:
    """A cookie jar and a way to send requests to one server."""

    def __init__(self, base_url):
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname, url.port or 80
        self.origin = base_url.rstrip("/")
        self.cookies = {}
        self.last_location = None

    def send(self, method, path, body=None, content_type=None, headers=None, cookies=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        h = dict(headers or {})
        if cookies and self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            h["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=h)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        self.last_location = response.getheader("Location")
        for header, value in response.getheaders():
            if header.lower() != "set-cookie":
                continue
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value
        conn.close()
        return response.status, text

    def api(self, method, path, payload=None, cookies=True):
        headers = {"X-CSRF-Token": self.cookies.get(CSRF, "")} if cookies else {}
        body = json.dumps(payload if payload is not None else {})
        status, text = self.send(method, path, body, "application/json", headers, cookies)
        return status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)

    def expect(self, want, method, path, payload=None, cookies=True):
        status, answer = self.api(method, path, payload, cookies)
        if status != want:
            fail(f"{method} {path} answered {status}, not {want}: {answer}")
        return answer


def server_time(client):
    status, text = client.send("GET", "/api/v1/test-clock", cookies=False)
    if status != 200:
        fail(f"GET /api/v1/test-clock answered {status}: is the server on --test-clock? {text}")
    return json.loads(text)["unix"]


def advance(client, span):
    client.expect(200, "POST", "/api/v1/test-clock", {"advance": span}, cookies=False)


def emailed_codes(client):
    """The codes in the dev mailbox's code emails, as a set."""
    status, page = client.send("GET", "/dev/mailbox", cookies=False)
    if status != 200:
        fail(f"GET /dev/mailbox answered {status}: start the server with the dev providers")
    return set(re.findall(r"Your Usher code is (\d{6})", page))


def setup(base_url, setup_link, state_file):
    c = Client(base_url)
    path = urllib.parse.urlsplit(setup_link).path
    status, _ = c.send("GET", path)
    if status != 200 or CSRF not in c.cookies:
        fail(f"GET {path} answered {status} without an anti-forgery cookie")
    form = urllib.parse.urlencode(
        {
            "csrf_token": c.cookies[CSRF],
            "full_name": NAME,
            "email": EMAIL,
            "password": PASSWORD,
            "confirm_password": PASSWORD,
        }
    )
    status, text = c.send(
        "POST", path, form, "application/x-www-form-urlencoded", {"Sec-Fetch-Site": "same-origin"}
    )
    if status != 303:
        fail(f"the set-up form answered {status}: {text[:500]}")
    # At the set-up stage: prove the mailbox, then add an authenticator app.
    before = emailed_codes(c)
    c.expect(204, "POST", "/api/v1/factors/set-up/check-code")
    deadline = time.monotonic() + 60
    while not (new := emailed_codes(c) - before):
        if time.monotonic() > deadline:
            fail("no check code reached the dev mailbox within 60 s")
        time.sleep(0.5)
    c.expect(204, "POST", "/api/v1/factors/set-up/check", {"code": new.pop()})
    secret = c.expect(201, "POST", "/api/v1/factors/set-up/app")["secret"].replace(" ", "")
    totp = pyotp.TOTP(secret)
    c.expect(200, "POST", "/api/v1/factors/set-up/app/confirm", {"code": totp.at(server_time(c))})
    with open(state_file, "w", encoding="utf-8") as f:
        json.dump({"email": EMAIL, "password": PASSWORD, "secret": secret}, f)


def signed_in(base_url, state, span="1h"):
    """A client signed in as the operator, after moving the clock on by `span`."""
    c = Client(base_url)
    # A fresh time step for the code, and a fresh rate-limit window whatever ran before.
    advance(c, span)
    answer = c.expect(200, "POST", "/api/v1/sign-in", {"email": state["email"], "password": state["password"]})
    if answer.get("stage") != "second_factor":
        fail(f"the sign-in should wait for the second factor; it answered {answer}")
    code = pyotp.TOTP(state["secret"]).at(server_time(c))
    c.expect(200, "POST", "/api/v1/sign-in/second-factor", {"method": "app", "code": code})
    if SESSION not in c.cookies or CSRF not in c.cookies:
        fail(f"the sign-in left no session or anti-forgery cookie: {sorted(c.cookies)}")
    who = c.api("GET", "/api/v1/session")[1]
    if not isinstance(who, dict) or who.get("role") != "operator":
        fail(f"GET /api/v1/session does not show the operator signed in: {who}")
    return c


def sign_in(base_url, state_file):
    with open(state_file, encoding="utf-8") as f:
        state = json.load(f)
    c = signed_in(base_url, state)
    print(f"Cookie: {SESSION}={c.cookies[SESSION]}; {CSRF}={c.cookies[CSRF]}")
    print(f"X-CSRF-Token: {c.cookies[CSRF]}")


def main(argv):
    state_file = os.environ.get("USHER_API_SESSION_STATE", "api-session.json")
    if len(argv) == 4 and argv[1] == "setup":
        setup(argv[2], argv[3], state_file)
    elif len(argv) == 3 and argv[1] == "sign-in":
        sign_in(argv[2], state_file)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
