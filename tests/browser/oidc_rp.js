// The relying party both OpenID Connect harnesses share: npm openid-client 6 (a certified
// relying-party library) for discovery, the code flow with PKCE, state and nonce, and jose for an
// independent check of each ID token's signature against the published key set. Used by
// oidc.test.js against Usher and by oidc_calibrate.mjs against npm oidc-provider.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { freePort, repoRoot } from './helpers.js';

export const SCOPE = 'openid profile email organisation';

/**
 * A relying party's callback and signed-out page: answers a small page and remembers every address
 * it was sent.
 */
export async function startCallback() {
  const port = await freePort();
  const seen = [];
  const signedOut = [];
  const answer = (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    // The browser also asks for /favicon.ico: only the callbacks and the signed-out pages count.
    if (url.pathname.endsWith('/callback')) seen.push(url);
    if (url.pathname.endsWith('/signed-out')) signedOut.push(url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html lang="en"><head><title>Relying party</title></head><body><main><h1>Back at the service</h1></main></body></html>');
  };
  // On both loopback addresses, so that http://localhost:PORT reaches it however it resolves.
  const servers = [http.createServer(answer), http.createServer(answer)];
  await new Promise((r) => servers[0].listen(port, '127.0.0.1', r));
  await new Promise((r) => {
    servers[1].once('error', () => r());
    servers[1].listen(port, '::1', r);
  });
  return {
    base: `http://127.0.0.1:${port}`,
    last: () => seen[seen.length - 1],
    /** The last address a signed-out redirect brought the browser to (post_logout_redirect_uri). */
    lastSignedOut: () => signedOut[signedOut.length - 1],
    close: () => Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r())))),
  };
}

/**
 * Starts npm oidc-provider as set up in reference_provider.mjs on a free port, for the
 * calibrations; returns { issuer, stop }.
 */
export async function startReferenceProvider() {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(repoRoot, 'tests/browser/reference_provider.mjs'), String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`the reference provider exited ${code}`)));
  });
  return { issuer: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

/** The left half of SHA-256, base64url: at_hash (OpenID Connect Core §3.1.3.6). */
export const atHash = (token) => crypto.createHash('sha256').update(token).digest().subarray(0, 16).toString('base64url');

/**
 * A relying party for the provider at `issuer`. `skew()` gives the provider's clock minus ours
 * in seconds (a test clock may be ahead); `callback` is startCallback()'s.
 */
export function relyingParty({ issuer, skew = async () => 0, callback, atHashRequired = true }) {
  /** openid-client's configuration for a registered client, by discovery, with the skew. */
  async function configFor(c) {
    const metadata = { client_secret: c.secret ?? undefined, [client.clockSkew]: await skew() };
    const auth = c.secret ? client.ClientSecretBasic(c.secret) : client.None();
    return client.discovery(new URL(issuer), c.id, metadata, auth, { execute: [client.allowInsecureRequests] });
  }

  /** A fresh authorization request: its URL and the checks for the answer. */
  async function request(c, extra = {}) {
    const config = await configFor(c);
    const verifier = client.randomPKCECodeVerifier();
    const checks = { pkceCodeVerifier: verifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: c.redirect,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
      ...extra,
    });
    return { config, checks, url };
  }

  /** Exchanges the code the browser brought back, checking the ID token independently too. */
  async function finish(r, c) {
    const back = callback.last();
    const tokens = await client.authorizationCodeGrant(r.config, back, { ...r.checks, idTokenExpected: true });
    const meta = r.config.serverMetadata();
    assert.equal(back.searchParams.get('iss'), meta.issuer, 'the authorization response names the issuer (RFC 9207)');
    const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token, jwks, {
      issuer,
      audience: c.id,
      currentDate: new Date((Math.floor(Date.now() / 1000) + (await skew())) * 1000),
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.ok(protectedHeader.kid, 'the ID token names its key');
    assert.equal(payload.nonce, r.checks.expectedNonce);
    // at_hash is optional in the code flow; Usher always sends it.
    if (atHashRequired || payload.at_hash !== undefined) {
      assert.equal(payload.at_hash, atHash(tokens.access_token), 'at_hash matches the access token');
    }
    assert.ok(payload.exp > payload.iat, 'exp after iat');
    return { tokens, claims: payload };
  }

  return { configFor, request, finish };
}
