"""Usher as an OpenID Connect provider, seen by a second independent client: PyPI authlib (its
requests OAuth2Session, PKCE and private_key_jwt) with joserfc checking every ID token against
the published key set. Headless: the person's session comes from the JSON API sign-in (password
and an authenticator app code, computed with pyotp at the server's test clock), and the
"Continue to ..." page is answered as a browser would post it.

Besides the flow itself, the negatives a relying party and a provider must both get right:
an altered signature, alg=none, HS256 keyed with the client's public key, the wrong audience, a wrong or missing PKCE verifier, a
replayed code (which also ends what the code gave), a code taken to another client, an
expired code, a redirect URI one character off, and private_key_jwt with a bad signature or a
replayed jti.

The same harness was calibrated once against npm oidc-provider (a certified provider):
tests/oidc/calibrate.sh, recorded in tests/oidc/CALIBRATION.md.

    USHER_BIN=target/debug/usher python3 -m pytest -q tests/oidc/test_authlib.py
"""

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidClaimError, UnsupportedAlgorithmError
from joserfc.jwk import ECKey, KeySet, OctKey

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "helpers"))
import api_session  # noqa: E402

# authlib refuses plain http unless told: the server listens on loopback only.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCOPE = "openid profile email organisation"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Usher:
    """A throwaway `usher serve --test-clock` with the dev providers, and its operator."""

    def __init__(self):
        self.bin = os.path.join(ROOT, os.environ.get("USHER_BIN", "target/debug/usher"))
        self.work = tempfile.mkdtemp(prefix="usher-authlib-")
        self.data = os.path.join(self.work, "data")
        os.makedirs(self.data)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "USHER_ALLOW_TEST_CLOCK": "1",
            "USHER_DATA_DIR": self.data,
            "USHER_LISTEN": f"127.0.0.1:{port}",
            "USHER_MANAGEMENT_LISTEN": "127.0.0.1:0",
            "USHER_PUBLIC_BASE_URL": self.base,
            "USHER_LOG_LEVEL": "warn",
            "NO_COLOR": "1",
        }
        self.log = open(os.path.join(self.work, "usher.log"), "w+", encoding="utf-8")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--test-clock"], env=self.env, cwd=self.data, stdout=self.log, stderr=subprocess.STDOUT
        )
        link = self._wait_for_setup_link()
        self.state_file = os.path.join(self.work, "operator.json")
        api_session.setup(self.base, link, self.state_file)
        with open(self.state_file, encoding="utf-8") as f:
            self.operator = json.load(f)
        self.meta = requests.get(f"{self.base}/.well-known/openid-configuration", timeout=30).json()
        self.browser = None

    def _wait_for_setup_link(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"usher exited early:\n{self.output()}")
            found = re.search(r"^Set up the first operator: (http\S+)$", self.output(), re.M)
            if found:
                return found.group(1)
            time.sleep(0.2)
        raise AssertionError(f"usher printed no set-up link:\n{self.output()}")

    def output(self):
        self.log.flush()
        with open(self.log.name, encoding="utf-8") as f:
            return f.read()

    def cli(self, *args):
        done = subprocess.run([self.bin, *args], env=self.env, cwd=self.data, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"usher {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    reference = False

    def add_client(self, name, *extra, host="127.0.0.1"):
        redirect = f"http://{host}:9/{name}/callback"
        out = self.cli("clients", "add", "--name", name, "--redirect-uri", redirect, "--json", *extra)
        made = json.loads(out.strip().splitlines()[-1])
        return {"id": made["client_id"], "secret": made["client_secret"], "redirect": redirect}

    def now(self):
        return api_session.server_time(api_session.Client(self.base))

    def advance(self, span):
        api_session.advance(api_session.Client(self.base), span)

    def sign_in(self):
        """The person's browser: signed in as the operator (password and app code)."""
        self.browser = api_session.signed_in(self.base, self.operator, span="30s")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Reference:
    """The calibration's provider instead of Usher (tests/oidc/calibrate): npm oidc-provider at
    $USHER_OIDC_REFERENCE, its clients added by dynamic registration, its sign-in automatic."""

    reference = True

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.work = tempfile.mkdtemp(prefix="usher-authlib-reference-")
        self.meta = requests.get(f"{self.base}/.well-known/openid-configuration", timeout=30).json()
        self.browser = api_session.Client(self.base)

    def add_client(self, name, *extra, host="127.0.0.1"):
        redirect = f"http://{host}:9/{name}/callback"
        flags = dict(zip(extra[::2], extra[1::2]))
        metadata = {
            "client_name": name,
            "redirect_uris": [redirect],
            "response_types": ["code"],
            "grant_types": ["authorization_code", "refresh_token"],
            "subject_type": "pairwise",
            "token_endpoint_auth_method": flags.get("--auth", "client_secret_basic"),
        }
        if "--id-token-alg" in flags:
            metadata["id_token_signed_response_alg"] = flags["--id-token-alg"]
        if "--jwks-file" in flags:
            with open(flags["--jwks-file"], encoding="utf-8") as f:
                metadata["jwks"] = json.load(f)
        made = requests.post(self.meta["registration_endpoint"], json=metadata, timeout=30)
        assert made.status_code == 201, made.text
        made = made.json()
        return {"id": made["client_id"], "secret": made.get("client_secret"), "redirect": redirect}

    def now(self):
        return api_session.server_time(api_session.Client(self.base))

    def advance(self, span):
        api_session.advance(api_session.Client(self.base), span)

    def sign_in(self):
        pass

    def stop(self):
        pass


@pytest.fixture(scope="module")
def usher():
    reference = os.environ.get("USHER_OIDC_REFERENCE")
    server = Reference(reference) if reference else Usher()
    server.sign_in()
    yield server
    server.stop()


def session_for(usher, c, **kw):
    """authlib's client for a registered client: secret by HTTP Basic unless told otherwise."""
    kw.setdefault("token_endpoint_auth_method", "client_secret_basic")
    return OAuth2Session(
        c["id"], c.get("secret"), scope=SCOPE, redirect_uri=c["redirect"], code_challenge_method="S256", **kw
    )


def authorize(usher, session, nonce=None, verifier=None, **params):
    """Builds the request with authlib, then answers Usher's pages as the signed-in person:
    returns the address Usher sent the browser back to, and the request's state and verifier."""
    verifier = verifier or base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    nonce = nonce or base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    url, state = session.create_authorization_url(
        usher.meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **params
    )
    back = follow(usher, url)
    return back, state, verifier, nonce


def follow(usher, url):
    """GETs an authorization URL with the person's cookies and continues on the page; returns
    where Usher redirected (a URL string) or raises with the page it showed."""
    parts = urllib.parse.urlsplit(url)
    status, page = usher.browser.send("GET", f"{parts.path}?{parts.query}")
    # The provider keeps the request and shows its page at an address of its own.
    while status in (302, 303) and urllib.parse.urlsplit(usher.browser.last_location).netloc in (
        "",
        urllib.parse.urlsplit(usher.base).netloc,
    ):
        own = urllib.parse.urlsplit(usher.browser.last_location)
        status, page = usher.browser.send("GET", f"{own.path}?{own.query}" if own.query else own.path)
    if status in (302, 303):
        return usher.browser.last_location
    assert status == 200, f"authorize answered {status}: {page[:600]}"
    action = re.search(r'<form method="post" action="(/oidc/authorize/[^"]+)"', page)
    assert action, f"no continue form on the page: {page[:600]}"
    form = urllib.parse.urlencode({"csrf_token": usher.browser.cookies[api_session.CSRF], "action": "continue"})
    status, page = usher.browser.send(
        "POST", action.group(1), form, "application/x-www-form-urlencoded", {"Sec-Fetch-Site": "same-origin"}
    )
    assert status == 303, f"continue answered {status}: {page[:600]}"
    return usher.browser.last_location


def keys(usher):
    return KeySet.import_key_set(requests.get(usher.meta["jwks_uri"], timeout=30).json())


def check_id_token(usher, c, token, nonce, alg="ES256"):
    """joserfc: the signature against the published keys, then iss, aud, exp, iat, nonce."""
    decoded = jwt.decode(token["id_token"], keys(usher), algorithms=[alg])
    assert decoded.header["alg"] == alg and decoded.header.get("kid")
    registry = jwt.JWTClaimsRegistry(
        now=usher.now(),
        leeway=5,
        iss={"essential": True, "value": usher.meta["issuer"]},
        aud={"essential": True, "value": c["id"]},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    registry.validate(decoded.claims)
    # at_hash is optional in the code flow (OpenID Connect Core §3.1.3.6); Usher always sends it.
    if not usher.reference or "at_hash" in decoded.claims:
        expected = create_half_hash(token["access_token"], alg).decode()
        assert decoded.claims["at_hash"] == expected, "at_hash matches the access token"
    return decoded.claims


def code_of(location):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    return {k: v[0] for k, v in query.items()}


def token_error(response):
    assert response.status_code in (400, 401), f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


def raw_token(usher, c, form, auth=True):
    """A token request by hand, for what authlib would not send."""
    basic = (c["id"], c["secret"]) if auth and c.get("secret") else None
    return requests.post(usher.meta["token_endpoint"], data=form, auth=basic, timeout=30)


# --- the flow --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def court(usher):
    return usher.add_client("court")


@pytest.fixture(scope="module")
def probation(usher):
    # On another host: a different pairwise sector whichever way a provider chooses sectors.
    return usher.add_client("probation", host="localhost")


def test_discovery_names_one_issuer_and_s256_only(usher):
    meta = usher.meta
    assert meta["issuer"] == usher.base
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    spoofed = requests.get(
        f"{usher.base}/.well-known/openid-configuration",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        timeout=30,
    ).json()
    assert spoofed["issuer"] == usher.base, "the issuer is configured, never taken from the request"


def test_code_flow_with_pkce_nonce_and_state(usher, court):
    session = session_for(usher, court)
    back, state, verifier, nonce = authorize(usher, session)
    answer = code_of(back)
    assert answer.get("state") == state, back
    assert answer["iss"] == usher.meta["issuer"], "RFC 9207"
    token = dict(
        session.fetch_token(usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state)
    )
    assert token["token_type"].lower() == "bearer"
    claims = check_id_token(usher, court, token, nonce)
    if not usher.reference:
        # Usher puts the scopes' claims in the ID token too; a provider may keep them for
        # userinfo when it issues an access token (OpenID Connect Core §5.4), as oidc-provider does.
        assert claims["email"] == api_session.EMAIL
        # How the person signed in: Usher's own values (oidc-provider sends them only on request).
        assert claims["amr"] == ["pwd", "otp", "mfa"]
        assert claims["acr"] == "urn:usher:acr:mfa"
        assert claims["auth_time"] <= usher.now()
    info = session.get(usher.meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"] and info["email"] == api_session.EMAIL
    renewed = session.refresh_token(usher.meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert renewed["refresh_token"] != token["refresh_token"], renewed
    again = jwt.decode(renewed["id_token"], keys(usher), algorithms=["ES256"]).claims
    assert again.get("auth_time") == claims.get("auth_time"), "a refresh keeps the time of the sign-in"


def test_public_client_with_pkce_only(usher):
    public = usher.add_client("public", "--auth", "none")
    assert public["secret"] is None
    session = session_for(usher, public, token_endpoint_auth_method="none")
    back, state, verifier, nonce = authorize(usher, session)
    token = session.fetch_token(
        usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state
    )
    check_id_token(usher, public, token, nonce)


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_a_client_may_need_rsa_signatures(usher, alg):
    rsa = usher.add_client(f"rsa-{alg.lower()}", "--id-token-alg", alg)
    session = session_for(usher, rsa)
    back, state, verifier, nonce = authorize(usher, session)
    token = session.fetch_token(
        usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state
    )
    check_id_token(usher, rsa, token, nonce, alg=alg)
    assert alg in usher.meta["id_token_signing_alg_values_supported"]
    with pytest.raises(Exception):
        jwt.decode(token["id_token"], keys(usher), algorithms=["ES256"])


def test_pairwise_subjects_differ_between_clients(usher, court, probation):
    subs = []
    for c in (court, probation):
        session = session_for(usher, c)
        back, state, verifier, nonce = authorize(usher, session)
        token = session.fetch_token(
            usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state
        )
        subs.append(check_id_token(usher, c, token, nonce)["sub"])
    assert subs[0] != subs[1]


# --- what a relying party must refuse --------------------------------------------------------------


def fresh_tokens(usher, c):
    session = session_for(usher, c)
    back, state, verifier, nonce = authorize(usher, session)
    token = session.fetch_token(
        usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state
    )
    return token, nonce


def test_an_altered_signature_is_refused(usher, court):
    token, nonce = fresh_tokens(usher, court)
    head, body, sig = token["id_token"].split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[10] ^= 0x01
    forged = ".".join([head, body, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, keys(usher), algorithms=["ES256"])
    # A changed claim under the real signature fails the same way.
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["email"] = "mallory@example.org"
    body2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        jwt.decode(".".join([head, body2, sig]), keys(usher), algorithms=["ES256"])


def test_alg_none_is_refused(usher, court):
    token, _ = fresh_tokens(usher, court)
    _, body, _ = token["id_token"].split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    with pytest.raises((UnsupportedAlgorithmError, ValueError)):
        jwt.decode(f"{header}.{body}.", keys(usher), algorithms=["ES256"])
    if usher.reference and token["access_token"].count(".") != 2:
        return  # opaque access tokens: nothing to strip the signature from
    # The provider does not take alg=none either: not as an access token...
    unsigned_access = ".".join([header, token["access_token"].split(".")[1], ""])
    answer = requests.get(
        usher.meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {unsigned_access}"}, timeout=30
    )
    assert answer.status_code == 401
    assert "invalid_token" in answer.headers["www-authenticate"]


def test_the_wrong_audience_is_refused(usher, court, probation):
    token, nonce = fresh_tokens(usher, court)
    decoded = jwt.decode(token["id_token"], keys(usher), algorithms=["ES256"])
    registry = jwt.JWTClaimsRegistry(now=usher.now(), aud={"essential": True, "value": probation["id"]})
    with pytest.raises(InvalidClaimError):
        registry.validate(decoded.claims)
    # Another client cannot read the court's access token by introspection either.
    answer = requests.post(
        usher.meta["introspection_endpoint"],
        data={"token": token["access_token"]},
        auth=(probation["id"], probation["secret"]),
        timeout=30,
    ).json()
    assert answer == {"active": False}


def test_a_wrong_pkce_verifier_is_refused(usher, court):
    session = session_for(usher, court)
    back, state, _, _ = authorize(usher, session)
    other = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    answer = raw_token(
        usher,
        court,
        {"grant_type": "authorization_code", "code": code_of(back)["code"], "redirect_uri": court["redirect"], "code_verifier": other},
    )
    assert token_error(answer) == "invalid_grant"


def test_a_missing_pkce_challenge_or_verifier_is_refused(usher, court):
    # No challenge in the request: the error goes back to the client.
    session = OAuth2Session(court["id"], court["secret"], scope=SCOPE, redirect_uri=court["redirect"])
    url, state = session.create_authorization_url(usher.meta["authorization_endpoint"], nonce="n-1")
    assert "code_challenge" not in url
    back = follow(usher, url)
    answer = code_of(back)
    assert answer["error"] == "invalid_request" and answer["state"] == state and "code" not in answer
    # A challenge in the request but no verifier at the token endpoint.
    session = session_for(usher, court)
    back, _, _, _ = authorize(usher, session)
    answer = raw_token(
        usher, court, {"grant_type": "authorization_code", "code": code_of(back)["code"], "redirect_uri": court["redirect"]}
    )
    assert token_error(answer) == "invalid_grant", "as for a wrong verifier (RFC 7636 §4.6)"


def test_a_replayed_code_is_refused_and_ends_what_it_gave(usher, court):
    session = session_for(usher, court)
    back, state, verifier, _ = authorize(usher, session)
    token = session.fetch_token(
        usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state
    )
    assert session.get(usher.meta["userinfo_endpoint"]).status_code == 200
    again = raw_token(
        usher,
        court,
        {"grant_type": "authorization_code", "code": code_of(back)["code"], "redirect_uri": court["redirect"], "code_verifier": verifier},
    )
    assert token_error(again) == "invalid_grant"
    assert session.get(usher.meta["userinfo_endpoint"]).status_code == 401, "the access token is revoked"
    refreshed = raw_token(usher, court, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert token_error(refreshed) == "invalid_grant", "the refresh token is revoked"


def test_a_code_taken_to_another_client_is_refused(usher, court, probation):
    session = session_for(usher, court)
    back, _, verifier, _ = authorize(usher, session)
    answer = raw_token(
        usher,
        probation,
        {"grant_type": "authorization_code", "code": code_of(back)["code"], "redirect_uri": court["redirect"], "code_verifier": verifier},
    )
    assert token_error(answer) == "invalid_grant"


def test_an_expired_code_is_refused(usher, court):
    session = session_for(usher, court)
    back, _, verifier, _ = authorize(usher, session)
    usher.advance("61s")
    answer = raw_token(
        usher,
        court,
        {"grant_type": "authorization_code", "code": code_of(back)["code"], "redirect_uri": court["redirect"], "code_verifier": verifier},
    )
    assert token_error(answer) == "invalid_grant"


def test_a_redirect_uri_one_character_off_never_redirects(usher, court):
    session = OAuth2Session(
        court["id"], court["secret"], scope=SCOPE, redirect_uri=court["redirect"] + "x", code_challenge_method="S256"
    )
    url, _ = session.create_authorization_url(
        usher.meta["authorization_endpoint"], code_verifier="v" * 43, nonce="n-1"
    )
    parts = urllib.parse.urlsplit(url)
    status, page = usher.browser.send("GET", f"{parts.path}?{parts.query}")
    assert status == 400, status
    assert usher.browser.last_location is None, "no redirect to an address not registered"
    assert "cannot" in page.lower() or "not" in page.lower()
    # At the token endpoint, the redirect URI must be the one the code was issued for.
    session = session_for(usher, court)
    back, _, verifier, _ = authorize(usher, session)
    answer = raw_token(
        usher,
        court,
        {
            "grant_type": "authorization_code",
            "code": code_of(back)["code"],
            "redirect_uri": court["redirect"][:-1],
            "code_verifier": verifier,
        },
    )
    assert token_error(answer) == "invalid_grant"


# --- private_key_jwt ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(usher):
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-1", "use": "sig", "alg": "ES256"}, private=True)
    path = os.path.join(usher.work, "rp-jwks.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"keys": [key.as_dict(private=False)]}, f)
    c = usher.add_client("keyed", "--auth", "private_key_jwt", "--jwks-file", path)
    assert c["secret"] is None, "a private_key_jwt client gets no secret"
    c["key"] = key
    return c


def assertion_auth(usher, jti=None):
    """authlib's private_key_jwt, dated by the server's clock (the test clock may be ahead)."""
    now = usher.now()
    claims = {"iat": now, "exp": now + 300}
    if jti:
        claims["jti"] = jti
    return PrivateKeyJWT(usher.meta["token_endpoint"], claims=claims, alg="ES256")


def keyed_session(usher, c, auth):
    session = OAuth2Session(
        c["id"], c["key"], scope=SCOPE, redirect_uri=c["redirect"], code_challenge_method="S256",
        token_endpoint_auth_method="private_key_jwt",
    )
    session.register_client_auth_method(auth)
    return session


def with_assertion(usher, c, back, verifier, assertion):
    """The code exchange by hand, the client proven by `assertion` alone."""
    form = {
        "grant_type": "authorization_code",
        "code": code_of(back)["code"],
        "redirect_uri": c["redirect"],
        "code_verifier": verifier,
        "client_id": c["id"],
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return raw_token(usher, c, form, auth=False)


def test_private_key_jwt_signs_the_client_in(usher, keyed):
    assert "private_key_jwt" in usher.meta["token_endpoint_auth_methods_supported"]
    session = keyed_session(usher, keyed, assertion_auth(usher))
    back, state, verifier, nonce = authorize(usher, session)
    token = session.fetch_token(
        usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state
    )
    check_id_token(usher, keyed, token, nonce)


def test_private_key_jwt_with_a_bad_signature_is_refused(usher, keyed):
    other = ECKey.generate_key("P-256", parameters={"kid": "rp-1"}, private=True)
    session = OAuth2Session(
        keyed["id"], other, scope=SCOPE, redirect_uri=keyed["redirect"], code_challenge_method="S256",
        token_endpoint_auth_method="private_key_jwt",
    )
    session.register_client_auth_method(assertion_auth(usher))
    back, state, verifier, _ = authorize(usher, session)
    with pytest.raises(Exception) as refused:
        session.fetch_token(usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state)
    assert "invalid_client" in str(refused.value)
    # alg=none in place of a signature.
    now = usher.now()
    head = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(
        json.dumps(
            {"iss": keyed["id"], "sub": keyed["id"], "aud": usher.meta["token_endpoint"], "jti": "none-1", "iat": now, "exp": now + 60}
        ).encode()
    ).rstrip(b"=").decode()
    answer = with_assertion(usher, keyed, back, verifier, f"{head}.{body}.")
    assert token_error(answer) == "invalid_client"
    # HS256 keyed with the client's own public key (the key-confusion attack).
    public_text = json.dumps(keyed["key"].as_dict(private=False))
    confused = jwt.encode(
        {"alg": "HS256"},
        {"iss": keyed["id"], "sub": keyed["id"], "aud": usher.meta["token_endpoint"], "jti": "hs-1", "iat": now, "exp": now + 60},
        OctKey.import_key(public_text.encode()),
        algorithms=["HS256"],
    )
    answer = with_assertion(usher, keyed, back, verifier, confused)
    assert token_error(answer) == "invalid_client"


def test_private_key_jwt_with_a_replayed_jti_is_refused(usher, keyed):
    auth = assertion_auth(usher, jti="once-only-" + base64.urlsafe_b64encode(os.urandom(9)).decode())
    session = keyed_session(usher, keyed, auth)
    back, state, verifier, _ = authorize(usher, session)
    session.fetch_token(usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state)
    # The same assertion (same jti) a second time, for a new code.
    back, state, verifier, _ = authorize(usher, session)
    with pytest.raises(Exception) as refused:
        session.fetch_token(usher.meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state)
    assert "invalid_client" in str(refused.value)
