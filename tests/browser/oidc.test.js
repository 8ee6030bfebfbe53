// Usher as an OpenID Connect provider, proven by a certified relying-party library: npm
// openid-client 6 (with jose for an independent check of each ID token's signature against the
// published key set; shared with the calibration in oidc_rp.js) drives the code flow with PKCE,
// state and nonce, while Chromium goes through Usher's real pages: the operator signs in with an authenticator app (codes computed
// here, RFC 6238), sees which service is asking, and continues. Then: single sign-on into a
// second client without typing, pairwise subjects that differ, prompt=login and max_age asking
// for a new sign-in, userinfo three ways, refresh rotation and reuse, revocation and
// introspection, and a client that admits only some kinds of organisation.
//
// The same harness was calibrated against npm oidc-provider (a certified provider):
// tests/oidc/calibrate, recorded in tests/oidc/CALIBRATION.md.
//
// Run: USHER_BIN=target/debug/usher node --test tests/browser/oidc.test.js

import { after, describe } from 'node:test';
import assert from 'node:assert/strict';

import * as client from 'openid-client';

import {
  advanceClock,
  assertHeading,
  assertPath,
  assertTextIncludes,
  checkA11y,
  checkA11yWithoutScripts,
  clickButton,
  clockNow,
  fill,
  normalise,
  submitSignIn,
  useJourney,
  visible,
} from './helpers.js';
import { addClient, nextAppCode as nextAppCodeFor, setUpOperatorWithApp, startCourtService } from './oidc_journey.js';
import { relyingParty, startCallback } from './oidc_rp.js';

const OPERATOR = { name: 'Olive Operator', email: 'olive@example.org', password: 'Tr1cky-Horse-42' };
const SHOT = 'oidc';

describe('OpenID Connect: openid-client 6 signs in through Usher\'s pages', { timeout: 900_000 }, () => {
  const journey = useJourney({ shotPrefix: `${SHOT}-` });
  const { step } = journey;
  const a11y = (p, name) => checkA11y(p, `${SHOT}-${name}`);
  let page;
  let callback;
  let keyText;
  const clients = {};
  let firstTokens;
  let firstClaims;

  /** The server's test clock minus ours: the relying party's clock is set to the provider's. */
  async function skew() {
    return (await clockNow(journey.usher.baseUrl)).unix - Math.floor(Date.now() / 1000);
  }

  /** openid-client against this journey's Usher (made once the server is up). */
  const rp = () => relyingParty({ issuer: journey.usher.baseUrl, skew, callback });
  const configFor = (c) => rp().configFor(c);
  const request = (c, extra) => rp().request(c, extra);

  const nextAppCode = () => nextAppCodeFor(journey.usher.baseUrl, keyText);

  const finish = (r, c) => rp().finish(r, c);
  after(() => callback?.close());

  step('the operator is set up with an authenticator app', async () => {
    ({ page } = await journey.freshPage());
    journey.current = page;
    callback = await startCallback();
    keyText = await setUpOperatorWithApp(page, journey.usher, OPERATOR);
  });

  step('the operator registers a service on the pages; its secret is shown once', async () => {
    await page.goto(`${journey.usher.baseUrl}/operator/clients`);
    await submitSignIn(page, OPERATOR.email, OPERATOR.password);
    await fill(page, 'Code from your app', await nextAppCode());
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Services that sign in with Usher');
    await a11y(page, 'clients');
    await page.getByRole('button', { name: 'Register a service' }).click();
    await assertHeading(page, 'Register a service');
    await fill(page, 'Service name', 'Court platform');
    await fill(page, 'Redirect URIs', 'http://court.example/callback');
    await clickButton(page, 'Register service');
    await assertTextIncludes(page, 'There is a problem', 'an http address that is not local is refused');
    await a11y(page, 'client-new-error');
    await checkA11yWithoutScripts(page, `${SHOT}-client-new-no-js`);
    const redirect = `${callback.base}/court/callback`;
    await fill(page, 'Redirect URIs', redirect);
    await page.getByLabel('Their mobile number (phone)').uncheck();
    await clickButton(page, 'Register service');
    await assertHeading(page, 'Service registered');
    await a11y(page, 'client-registered');
    const id = normalise(await page.locator('#client-id').innerText());
    const secret = normalise(await page.locator('#client-secret').innerText());
    clients.court = { id, secret, redirect, label: 'Court platform' };
    await page.getByRole('link', { name: 'Go to the service\'s page' }).click();
    await assertHeading(page, 'Court platform');
    await a11y(page, 'client');
    assert.equal(await page.locator('#client-secret').count(), 0, 'the secret is not shown again');
    await clickButton(page, 'Sign out');
    await assertHeading(page, 'You have signed out');
  });

  step('a second service and one for law firms only are registered with usher clients add', async () => {
    for (const [name, label, extra] of [
      ['probation', 'Probation service', []],
      ['firms', 'Legal aid portal', ['--organisation-kind', 'law_firm']],
    ]) {
      const made = await addClient(journey.usher, { label, redirect: `${callback.base}/${name}/callback`, extra });
      assert.match(made.id, /^[0-9a-f]{32}$/);
      assert.ok(made.secret?.length >= 43, 'a confidential client gets a secret once');
      assert.equal(made.issuer, journey.usher.baseUrl);
      clients[name] = made;
    }
  });

  step('discovery and the key set answer openid-client', async () => {
    const config = await configFor(clients.court);
    const meta = config.serverMetadata();
    assert.equal(meta.issuer, journey.usher.baseUrl);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    const res = await fetch(meta.jwks_uri);
    assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/, 'the key set says how long to cache it');
    const { keys } = await res.json();
    assert.ok(keys.length >= 2, 'the signing key and the next one are published');
  });

  step('code flow: sign in with password and app code, see the service, continue; tokens check out', async () => {
    const r = await request(clients.court);
    await page.goto(r.url.href);
    await submitSignIn(page, OPERATOR.email, OPERATOR.password);
    await assertHeading(page, 'Enter the code from your authenticator app');
    await fill(page, 'Code from your app', await nextAppCode());
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Sign in to Court platform');
    await assertTextIncludes(page, 'You are signed in as Olive Operator', 'the page says who is signing in');
    await a11y(page, 'continue');
    await checkA11yWithoutScripts(page, `${SHOT}-continue-no-js`);
    await clickButton(page, 'Continue to Court platform');
    await page.waitForURL((u) => u.href.startsWith(clients.court.redirect));
    const { tokens, claims } = await finish(r, clients.court);
    assert.equal(claims.name, 'Olive Operator');
    assert.equal(claims.email, 'olive@example.org');
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa'], 'a password and an app code');
    assert.deepEqual(claims.usher_methods, ['password', 'totp'], 'which one-time code: an authenticator app');
    assert.equal(claims.acr, 'urn:usher:acr:mfa');
    assert.equal(claims.role, 'operator');
    firstTokens = tokens;
    firstClaims = claims;
  });

  step('userinfo three ways: GET and POST with the header, POST with the token in the body', async () => {
    const config = await configFor(clients.court);
    const info = await client.fetchUserInfo(config, firstTokens.access_token, firstClaims.sub);
    assert.equal(info.email, 'olive@example.org');
    const endpoint = config.serverMetadata().userinfo_endpoint;
    const byPost = await fetch(endpoint, { method: 'POST', headers: { authorization: `Bearer ${firstTokens.access_token}` } });
    assert.equal(byPost.status, 200);
    assert.equal((await byPost.json()).sub, firstClaims.sub);
    const inBody = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: firstTokens.access_token }),
    });
    assert.equal(inBody.status, 200);
    assert.equal((await inBody.json()).sub, firstClaims.sub);
  });

  step('single sign-on: a second service without typing anything; its sub differs', async () => {
    const r = await request(clients.probation);
    await page.goto(r.url.href);
    await assertHeading(page, 'Sign in to Probation service');
    assert.equal(await page.getByLabel('Password').count(), 0, 'no password asked');
    await clickButton(page, 'Continue to Probation service');
    await page.waitForURL((u) => u.href.startsWith(clients.probation.redirect));
    const { claims } = await finish(r, clients.probation);
    assert.notEqual(claims.sub, firstClaims.sub, 'pairwise subjects differ between services');
    assert.equal(claims.auth_time, firstClaims.auth_time, 'the same sign-in');
  });

  step('prompt=login asks for a new sign-in and gives a later auth_time', async () => {
    await advanceClock(journey.usher.baseUrl, '2m');
    const r = await request(clients.court, { prompt: 'login' });
    await page.goto(r.url.href);
    await assertHeading(page, 'Sign in');
    await assertTextIncludes(page, 'asks you to sign in again', 'the sign-in page says why');
    await a11y(page, 'sign-in-again');
    await submitSignIn(page, OPERATOR.email, OPERATOR.password);
    await fill(page, 'Code from your app', await nextAppCode());
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Sign in to Court platform');
    await clickButton(page, 'Continue to Court platform');
    await page.waitForURL((u) => u.href.startsWith(clients.court.redirect));
    const { claims } = await finish(r, clients.court);
    assert.ok(claims.auth_time > firstClaims.auth_time, `auth_time ${claims.auth_time} after ${firstClaims.auth_time}`);
    firstClaims = claims;
  });

  step('max_age past: a new sign-in first', async () => {
    await advanceClock(journey.usher.baseUrl, '10m');
    const r = await request(clients.court, { max_age: '300' });
    await page.goto(r.url.href);
    await assertHeading(page, 'Sign in');
    await submitSignIn(page, OPERATOR.email, OPERATOR.password);
    await fill(page, 'Code from your app', await nextAppCode());
    await clickButton(page, 'Continue');
    await clickButton(page, 'Continue to Court platform');
    await page.waitForURL((u) => u.href.startsWith(clients.court.redirect));
    const { tokens, claims } = await finish(r, clients.court);
    assert.ok(claims.auth_time > firstClaims.auth_time);
    firstTokens = tokens;
  });

  step('refresh rotates the token; reusing the spent one after the retry window ends the family', async () => {
    const config = await configFor(clients.court);
    const renewed = await client.refreshTokenGrant(config, firstTokens.refresh_token);
    assert.notEqual(renewed.refresh_token, firstTokens.refresh_token, 'a new refresh token');
    assert.ok(renewed.id_token, 'a new ID token');
    await advanceClock(journey.usher.baseUrl, '31s');
    const later = await configFor(clients.court);
    await assert.rejects(client.refreshTokenGrant(later, firstTokens.refresh_token), (e) => e.error === 'invalid_grant');
    await assert.rejects(client.refreshTokenGrant(later, renewed.refresh_token), (e) => e.error === 'invalid_grant', 'the family is revoked');
  });

  step('introspection says live, revocation ends it, introspection then says not active', async () => {
    const r = await request(clients.court);
    await page.goto(r.url.href);
    await clickButton(page, 'Continue to Court platform');
    await page.waitForURL((u) => u.href.startsWith(clients.court.redirect));
    const { tokens } = await finish(r, clients.court);
    const config = await configFor(clients.court);
    assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, true);
    assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, true);
    await client.tokenRevocation(config, tokens.refresh_token);
    assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false);
    assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, false);
  });

  step('a service for law firms only: the operator is told, and the client hears access_denied', async () => {
    const r = await request(clients.firms);
    await page.goto(r.url.href);
    await assertHeading(page, 'Your organisation cannot use Legal aid portal');
    await a11y(page, 'not-admitted');
    await clickButton(page, 'Go back to Legal aid portal');
    await page.waitForURL((u) => u.href.startsWith(clients.firms.redirect));
    await assert.rejects(
      client.authorizationCodeGrant(r.config, callback.last(), r.checks),
      (e) => e.error === 'access_denied',
    );
  });

  step('the example court service (examples/court-service) shows what the ID token says', async () => {
    const { base, stop } = await startCourtService(journey.usher);
    try {
      await page.goto(base);
      await assertHeading(page, 'Sign in to the court platform');
      await page.getByRole('link', { name: 'Sign in with Usher' }).click();
      await assertHeading(page, 'Sign in to Court platform (example)');
      await clickButton(page, 'Continue to Court platform (example)');
      await assertHeading(page, 'Welcome to the court platform');
      await assertTextIncludes(page, 'Olive Operator', 'the name from the ID token');
      await assertTextIncludes(page, 'With a password and an authenticator app', 'how the person signed in');
      await a11y(page, 'court-service');
    } finally {
      stop();
    }
  });

  step('cancel on the continue page: the client hears access_denied', async () => {
    const r = await request(clients.court);
    await page.goto(r.url.href);
    await clickButton(page, 'Cancel');
    await page.waitForURL((u) => u.href.startsWith(clients.court.redirect));
    assertPath(page, '/court/callback', 'after cancelling');
    await assert.rejects(client.authorizationCodeGrant(r.config, callback.last(), r.checks), (e) => e.error === 'access_denied');
    await visible(page.getByRole('heading', { name: 'Back at the service' }), 'the service\'s page', page);
  });
});
