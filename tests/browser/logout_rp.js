// A relying party's back-channel logout address (OpenID Connect Back-Channel Logout 1.0 §2.5-2.8),
// written the way a careful service would write it and independent of Usher's code: each logout
// token is verified with npm jose against the provider's published key set (issuer, audience,
// typ logout+jwt, lifetime on the provider's clock), its claims are checked as §2.4 and §2.6 ask
// (events, sid and/or sub, no nonce, a jti), and a jti seen before is refused as a replay.
// Answers 200 for a good token, 400 with a reason otherwise, and 503 while "down".

import http from 'node:http';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { freePort } from './helpers.js';

export const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * Listens on 127.0.0.1 for POST /logout/<service>. `issuer` is the provider; `skew()` gives its
 * clock minus ours in seconds. `audience(service)` is the client ID each service expects.
 */
export async function startLogoutReceiver({ issuer, skew = async () => 0, audience }) {
  const port = await freePort();
  // The key set named by discovery, fetched when the first token arrives.
  let jwks;
  const keys = async () => {
    if (!jwks) {
      const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
      jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
    }
    return jwks;
  };
  const accepted = [];
  const refused = [];
  const jtis = new Set();
  let down = false;
  let attemptsWhileDown = 0;

  async function check(service, token) {
    const aud = audience(service);
    if (!aud) throw new Error(`no service called ${service}`);
    const { payload, protectedHeader } = await jwtVerify(token, await keys(), {
      issuer,
      audience: aud,
      typ: 'logout+jwt',
      currentDate: new Date((Math.floor(Date.now() / 1000) + (await skew())) * 1000),
      requiredClaims: ['iat', 'exp', 'jti', 'events'],
    });
    if (protectedHeader.alg === 'none') throw new Error('unsigned');
    if (typeof payload.events?.[LOGOUT_EVENT] !== 'object') throw new Error('no back-channel logout event');
    if ('nonce' in payload) throw new Error('a logout token must not carry a nonce');
    if (!payload.sid && !payload.sub) throw new Error('neither sid nor sub');
    if (jtis.has(payload.jti)) throw new Error(`replayed jti ${payload.jti}`);
    jtis.add(payload.jti);
    return payload;
  }

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      const answer = (status, json) => {
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(json));
      };
      const match = /^\/logout\/([a-z0-9-]+)$/.exec(new URL(req.url, 'http://x').pathname);
      if (req.method !== 'POST' || !match) return answer(404, { error: 'not_found' });
      if (down) {
        attemptsWhileDown += 1;
        return answer(503, { error: 'temporarily_unavailable' });
      }
      const form = new URLSearchParams(body);
      const service = match[1];
      const token = form.get('logout_token') ?? '';
      try {
        const claims = await check(service, token);
        accepted.push({ service, token, claims });
        answer(200, {});
      } catch (e) {
        refused.push({ service, token, reason: e.message });
        answer(400, { error: 'invalid_request', error_description: e.message });
      }
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const base = `http://127.0.0.1:${port}`;

  return {
    base,
    uri: (service) => `${base}/logout/${service}`,
    /** Tokens accepted so far (optionally for one service), oldest first. */
    accepted: (service) => accepted.filter((t) => !service || t.service === service),
    refused: () => [...refused],
    attemptsWhileDown: () => attemptsWhileDown,
    setDown: (d) => {
      down = d;
    },
    /** Posts a token as an attacker would replay it; returns the HTTP status. */
    async replay(service, token) {
      const res = await fetch(`${base}/logout/${service}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: token }),
      });
      return res.status;
    },
    /** Waits until `n` tokens in all have been accepted since `from` (an index), then returns them. */
    async waitFor(n, from = 0, timeoutMs = 30_000) {
      const start = Date.now();
      while (accepted.length - from < n) {
        if (Date.now() - start > timeoutMs) {
          throw new Error(`expected ${n} logout tokens within ${timeoutMs / 1000} s; got ${accepted.length - from} (refused: ${JSON.stringify(refused.map((r) => r.reason))})`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      return accepted.slice(from);
    },
    close: () => new Promise((r) => server.close(r)),
  };
}
