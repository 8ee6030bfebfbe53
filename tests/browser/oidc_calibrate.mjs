// Calibration of the openid-client harness (oidc_rp.js, used by oidc.test.js) against npm
// oidc-provider, a certified provider (reference_provider.mjs): the same checks must pass against
// it, so that their passing against Usher means Usher is right rather than the checks lax.
// Chromium follows the redirects (the reference signs its one person in without a page).
//
// Not part of the suite; run by tests/oidc/calibrate:
//   node --test tests/browser/oidc_calibrate.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import * as client from 'openid-client';

import { launchBrowser } from './helpers.js';
import { relyingParty, startCallback, startReferenceProvider } from './oidc_rp.js';

describe('the openid-client harness against oidc-provider', { timeout: 300_000 }, () => {
  let provider;
  let issuer;
  let browser;
  let page;
  let callback;
  let rp;
  const clients = {};

  const clock = async (advance) => {
    const res = await fetch(`${issuer}/api/v1/test-clock`, advance
      ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ advance }) }
      : {});
    return (await res.json()).unix;
  };
  const skew = async () => (await clock()) - Math.floor(Date.now() / 1000);

  async function register(name, host) {
    const redirect = `${callback.base.replace('127.0.0.1', host)}/${name}/callback`;
    const res = await fetch(`${issuer}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: [redirect],
        response_types: ['code'],
        grant_types: ['authorization_code', 'refresh_token'],
        subject_type: 'pairwise',
        token_endpoint_auth_method: 'client_secret_basic',
      }),
    });
    assert.equal(res.status, 201);
    const made = await res.json();
    return { id: made.client_id, secret: made.client_secret, redirect };
  }

  async function signIn(c, extra) {
    const r = await rp.request(c, extra);
    await page.goto(r.url.href);
    await page.waitForURL((u) => u.href.startsWith(c.redirect));
    assert.ok(callback.last().searchParams.get('code'), `a code came back: ${callback.last()} (page at ${page.url()})`);
    return rp.finish(r, c);
  }

  before(async () => {
    provider = await startReferenceProvider();
    ({ issuer } = provider);
    callback = await startCallback();
    rp = relyingParty({ issuer, skew, callback, atHashRequired: false });
    clients.court = await register('court', '127.0.0.1');
    clients.probation = await register('probation', 'localhost');
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
  });

  after(async () => {
    await browser?.close();
    await callback?.close();
    provider?.stop();
  });

  let first;
  test('discovery, the code flow and the ID token checks pass', async () => {
    const meta = (await rp.configFor(clients.court)).serverMetadata();
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    first = await signIn(clients.court);
  });

  test('userinfo three ways', async () => {
    const config = await rp.configFor(clients.court);
    const info = await client.fetchUserInfo(config, first.tokens.access_token, first.claims.sub);
    assert.equal(info.sub, first.claims.sub);
    const endpoint = config.serverMetadata().userinfo_endpoint;
    const byPost = await fetch(endpoint, { method: 'POST', headers: { authorization: `Bearer ${first.tokens.access_token}` } });
    assert.equal((await byPost.json()).sub, first.claims.sub);
    const inBody = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: first.tokens.access_token }),
    });
    assert.equal((await inBody.json()).sub, first.claims.sub);
  });

  test('single sign-on into a second client; pairwise subjects differ', async () => {
    const { claims } = await signIn(clients.probation);
    assert.notEqual(claims.sub, first.claims.sub);
  });

  test('refresh rotates; reuse of the spent token ends the family', async () => {
    const config = await rp.configFor(clients.court);
    const renewed = await client.refreshTokenGrant(config, first.tokens.refresh_token);
    assert.notEqual(renewed.refresh_token, first.tokens.refresh_token);
    await clock('31s');
    const later = await rp.configFor(clients.court);
    await assert.rejects(client.refreshTokenGrant(later, first.tokens.refresh_token), (e) => e.error === 'invalid_grant');
    await assert.rejects(client.refreshTokenGrant(later, renewed.refresh_token), (e) => e.error === 'invalid_grant');
  });

  test('introspection and revocation', async () => {
    const { tokens } = await signIn(clients.court);
    const config = await rp.configFor(clients.court);
    assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, true);
    assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, true);
    await client.tokenRevocation(config, tokens.refresh_token);
    assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, false);
  });

  test('an ID token for another request (its nonce) is refused by the same checks', async () => {
    const r = await rp.request(clients.court);
    await page.goto(r.url.href);
    await page.waitForURL((u) => u.href.startsWith(clients.court.redirect));
    const wrongNonce = { ...r, checks: { ...r.checks, expectedNonce: client.randomNonce() } };
    await assert.rejects(rp.finish(wrongNonce, clients.court), /unexpected JWT claim value/);
  });
});
