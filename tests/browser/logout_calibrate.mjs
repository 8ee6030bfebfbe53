// Calibration of the logout harness (logout_rp.js, used by logout.test.js) against npm
// oidc-provider, a certified provider (reference_provider.mjs): its logout tokens must pass the
// receiver's checks, and tokens signed with its own key but wrong in one way each (a nonce, no
// event, another audience or issuer, expired, the wrong typ, neither sid nor sub, a replayed jti)
// or signed with another key must be refused. openid-client's end-session URL is followed in
// Chromium to the registered address with state. So a pass against Usher means Usher is right.
//
// Not part of the suite; run by tests/oidc/calibrate:
//   node --test tests/browser/logout_calibrate.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import * as client from 'openid-client';
import { SignJWT, generateKeyPair } from 'jose';

import { launchBrowser } from './helpers.js';
import { LOGOUT_EVENT, startLogoutReceiver } from './logout_rp.js';
import { relyingParty, startCallback, startReferenceProvider } from './oidc_rp.js';

describe('the logout harness against oidc-provider', { timeout: 300_000 }, () => {
  let provider;
  let issuer;
  let browser;
  let page;
  let callback;
  let receiver;
  let rp;
  let court;
  let signedIn;

  const now = async () => (await (await fetch(`${issuer}/api/v1/test-clock`)).json()).unix;
  const skew = async () => (await now()) - Math.floor(Date.now() / 1000);

  before(async () => {
    provider = await startReferenceProvider();
    ({ issuer } = provider);
    callback = await startCallback();
    receiver = await startLogoutReceiver({ issuer, skew, audience: (s) => (s === 'court' ? court?.id : undefined) });
    rp = relyingParty({ issuer, skew, callback, atHashRequired: false });
    const redirect = `${callback.base}/court/callback`;
    const res = await fetch(`${issuer}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: [redirect],
        post_logout_redirect_uris: [`${callback.base}/court/signed-out`],
        backchannel_logout_uri: receiver.uri('court'),
        backchannel_logout_session_required: true,
        response_types: ['code'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
      }),
    });
    const made = await res.json();
    assert.equal(res.status, 201, JSON.stringify(made));
    court = { id: made.client_id, secret: made.client_secret, redirect };
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
  });

  after(async () => {
    await browser?.close();
    await callback?.close();
    await receiver?.close();
    provider?.stop();
  });

  test('sign in, then openid-client\'s end-session URL: back to the registered address with state', async () => {
    const r = await rp.request(court);
    await page.goto(r.url.href);
    await page.waitForURL((u) => u.href.startsWith(court.redirect));
    signedIn = await rp.finish(r, court);
    assert.ok(signedIn.claims.sid, 'the ID token carries a sid');
    const config = await rp.configFor(court);
    const state = client.randomState();
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: signedIn.tokens.id_token,
      post_logout_redirect_uri: `${callback.base}/court/signed-out`,
      state,
    });
    await page.goto(url.href);
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${callback.base}/court/signed-out`));
    assert.equal(callback.lastSignedOut().searchParams.get('state'), state);
  });

  test('the certified provider\'s logout token passes every check, with the sid and sub of the ID token', async () => {
    const [told] = await receiver.waitFor(1);
    assert.equal(told.claims.sid, signedIn.claims.sid);
    assert.equal(told.claims.sub, signedIn.claims.sub);
    assert.deepEqual(receiver.refused(), []);
  });

  test('the same token again is refused as a replay', async () => {
    const [told] = receiver.accepted();
    assert.equal(await receiver.replay('court', told.token), 400);
    assert.match(receiver.refused().at(-1).reason, /replayed jti/);
  });

  test('tokens signed with the provider\'s key but wrong in one way each are refused', async () => {
    const t = await now();
    const good = () => ({
      iss: issuer,
      aud: court.id,
      iat: t,
      exp: t + 120,
      jti: crypto.randomUUID(),
      events: { [LOGOUT_EVENT]: {} },
      sid: signedIn.claims.sid,
      sub: signedIn.claims.sub,
    });
    const sign = async (claims, typ = 'logout+jwt') => {
      const res = await fetch(`${issuer}/test/sign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ claims, typ }),
      });
      return res.text();
    };
    assert.equal(await receiver.replay('court', await sign(good())), 200, 'the baseline is accepted');
    const without = (name) => {
      const c = good();
      delete c[name];
      return c;
    };
    const wrong = {
      'a nonce': { ...good(), nonce: 'n' },
      'no event': without('events'),
      'another event': { ...good(), events: { 'http://schemas.openid.net/event/other': {} } },
      'another audience': { ...good(), aud: 'someone-else' },
      'another issuer': { ...good(), iss: 'https://elsewhere.example' },
      'expired': { ...good(), iat: t - 600, exp: t - 300 },
      'no jti': without('jti'),
      'neither sid nor sub': (() => {
        const c = without('sid');
        delete c.sub;
        return c;
      })(),
    };
    for (const [what, claims] of Object.entries(wrong)) {
      assert.equal(await receiver.replay('court', await sign(claims)), 400, `${what}: refused`);
    }
    assert.equal(await receiver.replay('court', await sign(good(), 'JWT')), 400, 'typ JWT (an ID token, say): refused');
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT(good()).setProtectedHeader({ alg: 'ES256', kid: 'reference-1', typ: 'logout+jwt' }).sign(privateKey);
    assert.equal(await receiver.replay('court', forged), 400, 'another key with the same kid: refused');
    assert.equal(receiver.accepted().length, 2, 'only the provider\'s token and the baseline');
  });
});
