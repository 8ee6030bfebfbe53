// Signing out everywhere (issue 14, S46), proven by independent code: a relying party of this
// harness (logout_rp.js) receives Usher's back-channel logout tokens and verifies each with npm
// jose against the published key set, refusing a replayed jti; npm openid-client builds the
// end-session URLs that Chromium follows. Triggers: Usher's own "Sign out", "Sign out of all
// other sessions" from another browser, RP-initiated logout with and without an ID token hint,
// and the idle timeout reached by the lifecycle job; a service that is down hears once it is
// back. Every token is exactly one per (session, service), and no jti is ever used twice.
//
// Run: USHER_BIN=target/debug/usher node --test tests/browser/logout.test.js

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
  click,
  clickButton,
  clockNow,
  fill,
  signOut,
  sleep,
  submitSignIn,
  useJourney,
} from './helpers.js';
import { startLogoutReceiver } from './logout_rp.js';
import { addClient, nextAppCode, setUpOperatorWithApp, startCourtService } from './oidc_journey.js';
import { relyingParty, startCallback } from './oidc_rp.js';

const OPERATOR = { name: 'Olive Operator', email: 'olive@example.org', password: 'Tr1cky-Horse-42' };
const SHOT = 'logout';

describe('Signing out everywhere: logout tokens checked with jose, end-session URLs from openid-client', { timeout: 900_000 }, () => {
  const journey = useJourney({ shotPrefix: `${SHOT}-`, server: { extraEnv: { USHER_LIFECYCLE_RUN_EVERY: '1s' } } });
  const { step } = journey;
  const a11y = (p, name) => checkA11y(p, `${SHOT}-${name}`);
  let page;
  let callback;
  let receiver;
  let keyText;
  const clients = {};
  /** The ID token claims each service last got, by service. */
  const signedIn = {};
  const everyJti = [];

  const skew = async () => (await clockNow(journey.usher.baseUrl)).unix - Math.floor(Date.now() / 1000);
  const rp = () => relyingParty({ issuer: journey.usher.baseUrl, skew, callback });
  after(() => Promise.all([callback?.close(), receiver?.close()]));

  /** The code flow for `name` in `p`; signs in with password and app code when asked. */
  async function signInTo(p, name) {
    const c = clients[name];
    const r = await rp().request(c);
    await p.goto(r.url.href);
    if ((await p.locator('h1').innerText()).trim() === 'Sign in') {
      await submitSignIn(p, OPERATOR.email, OPERATOR.password);
      await fill(p, 'Code from your app', await nextAppCode(journey.usher.baseUrl, keyText));
      await clickButton(p, 'Continue');
    }
    await assertHeading(p, `Sign in to ${c.label}`);
    await clickButton(p, `Continue to ${c.label}`);
    await p.waitForURL((u) => u.href.startsWith(c.redirect));
    const { tokens, claims } = await rp().finish(r, c);
    assert.ok(claims.sid, 'the ID token carries a sid for back-channel logout');
    signedIn[name] = { tokens, claims };
    return { tokens, claims };
  }

  /** Waits for exactly `services` (names) to be told, once each, with the sid and sub they know. */
  async function expectTold(from, services) {
    const got = await receiver.waitFor(services.length, from);
    // Nothing more comes, however often the worker runs.
    await sleep(2_500);
    const all = receiver.accepted().slice(from);
    assert.deepEqual(all.map((t) => t.service).sort(), [...services].sort(), 'one token per service');
    for (const t of got) {
      const known = signedIn[t.service].claims;
      assert.equal(t.claims.sid, known.sid, `${t.service}: the sid of its ID token`);
      assert.equal(t.claims.sub, known.sub, `${t.service}: the sub of its ID token`);
      everyJti.push(t.claims.jti);
    }
    return got;
  }

  /** "Sign out" on the end-session confirmation page (not the one in the header). */
  const confirmSignOut = (p) =>
    click(p, p.locator('main').getByRole('button', { name: 'Sign out', exact: true }), 'the page\'s "Sign out" button');

  /** openid-client's configuration for a service. */
  const configFor = (name) => rp().configFor(clients[name]);

  step('the operator is set up; two services register a back-channel logout address', async () => {
    ({ page } = await journey.freshPage());
    journey.current = page;
    callback = await startCallback();
    receiver = await startLogoutReceiver({ issuer: journey.usher.baseUrl, skew, audience: (s) => clients[s]?.id });
    keyText = await setUpOperatorWithApp(page, journey.usher, OPERATOR);
    for (const [name, label] of [
      ['court', 'Court platform'],
      ['probation', 'Probation service'],
    ]) {
      clients[name] = await addClient(journey.usher, {
        label,
        redirect: `${callback.base}/${name}/callback`,
        extra: ['--backchannel-logout-uri', receiver.uri(name), '--post-logout-redirect-uri', `${callback.base}/${name}/signed-out`],
      });
    }
    const meta = (await configFor('court')).serverMetadata();
    assert.equal(meta.end_session_endpoint, `${journey.usher.baseUrl}/oidc/end_session`);
    assert.equal(meta.backchannel_logout_supported, true);
    assert.equal(meta.backchannel_logout_session_supported, true);
  });

  step('"Your sessions" names the services; Usher\'s "Sign out" tells both, once each', async () => {
    await signInTo(page, 'court');
    await signInTo(page, 'probation');
    await page.goto('/account/sessions');
    await assertHeading(page, 'Your sessions');
    await assertTextIncludes(page, 'Court platform', 'the session lists the services it signed in to');
    await assertTextIncludes(page, 'Probation service', 'both of them');
    await a11y(page, 'sessions');
    const from = receiver.accepted().length;
    await signOut(page, 'signed-out', a11y);
    await assertTextIncludes(page, 'that you have signed out, so they sign you out too', 'the page says who was told');
    await assertTextIncludes(page, 'Probation service', 'and names them');
    const told = await expectTold(from, ['court', 'probation']);
    assert.notEqual(told[0].claims.jti, told[1].claims.jti);
    // The refresh tokens died with the session.
    const config = await configFor('court');
    await assert.rejects(client.refreshTokenGrant(config, signedIn.court.tokens.refresh_token), (e) => e.error === 'invalid_grant');
  });

  step('an attacker replaying a logout token (same jti) is refused by the service', async () => {
    const [first] = receiver.accepted();
    assert.equal(await receiver.replay(first.service, first.token), 400);
    assert.match(receiver.refused().at(-1).reason, /replayed jti/);
  });

  step('"Sign out of all other sessions" tells the service the other browser signed in to', async () => {
    await signInTo(page, 'court');
    const other = (await journey.freshPage()).page;
    await signInTo(other, 'probation');
    const from = receiver.accepted().length;
    await page.goto('/account/sessions');
    await clickButton(page, 'Sign out of all other sessions');
    await assertTextIncludes(page, 'Probation service', 'the page says which services were told');
    await a11y(page, 'sessions-ended-others');
    await expectTold(from, ['probation']);
    await other.context().close();
  });

  step('end-session with an ID token hint: signed out at once, back to the registered address with state', async () => {
    const config = await configFor('court');
    const state = client.randomState();
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: signedIn.court.tokens.id_token,
      post_logout_redirect_uri: `${callback.base}/court/signed-out`,
      state,
    });
    const from = receiver.accepted().length;
    await page.goto(url.href);
    await page.waitForURL((u) => u.href.startsWith(`${callback.base}/court/signed-out`));
    assert.equal(callback.lastSignedOut().searchParams.get('state'), state, 'state comes back');
    await expectTold(from, ['court']);
    await page.goto(`${journey.usher.baseUrl}/home`);
    assertPath(page, '/sign-in', 'the Usher session is over');
  });

  step('end-session to an address the service never registered: signed out, and the browser stays at Usher', async () => {
    await signInTo(page, 'court');
    const config = await configFor('court');
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: signedIn.court.tokens.id_token,
      post_logout_redirect_uri: 'https://attacker.example/phish',
      state: 'x',
    });
    const from = receiver.accepted().length;
    await page.goto(url.href);
    await assertHeading(page, 'Sign out of Usher?');
    await assertTextIncludes(page, 'has not registered', 'the page says why it will not go back');
    await a11y(page, 'end-session-unregistered');
    await confirmSignOut(page);
    await assertHeading(page, 'You have signed out');
    assert.ok(page.url().startsWith(journey.usher.baseUrl), `still at Usher: ${page.url()}`);
    await expectTold(from, ['court']);
  });

  step('end-session without a hint asks first, so a link from elsewhere cannot sign anyone out', async () => {
    await signInTo(page, 'court');
    const config = await configFor('court');
    const state = client.randomState();
    const url = client.buildEndSessionUrl(config, { post_logout_redirect_uri: `${callback.base}/court/signed-out`, state });
    const from = receiver.accepted().length;
    await page.goto(url.href);
    await assertHeading(page, 'Sign out of Usher?');
    await assertTextIncludes(page, 'Court platform asked Usher to sign you out', 'the page names the service');
    await a11y(page, 'end-session-confirm');
    await checkA11yWithoutScripts(page, `${SHOT}-end-session-confirm-no-js`);
    await sleep(1_500);
    assert.equal(receiver.accepted().length, from, 'nothing ends before the person says so');
    await confirmSignOut(page);
    await page.waitForURL((u) => u.href.startsWith(`${callback.base}/court/signed-out`));
    assert.equal(callback.lastSignedOut().searchParams.get('state'), state);
    await expectTold(from, ['court']);
  });

  step('a service that is down hears once it is back', async () => {
    await signInTo(page, 'court');
    receiver.setDown(true);
    const from = receiver.accepted().length;
    await page.goto('/home');
    await signOut(page, 'signed-out-service-down', a11y);
    const start = Date.now();
    while (receiver.attemptsWhileDown() === 0) {
      assert.ok(Date.now() - start < 30_000, 'Usher tried while the service was down');
      await sleep(200);
    }
    // The operator, in another browser, sees the delivery waiting to be tried again.
    const other = (await journey.freshPage()).page;
    await other.goto(`/operator/clients/${clients.court.id}`);
    await submitSignIn(other, OPERATOR.email, OPERATOR.password);
    await fill(other, 'Code from your app', await nextAppCode(journey.usher.baseUrl, keyText));
    await clickButton(other, 'Continue');
    await assertHeading(other, 'Court platform');
    await assertTextIncludes(other, 'Trying again', 'the service\'s page shows the retry');
    await a11y(other, 'client-logout-retrying');
    await other.context().close();
    receiver.setDown(false);
    // The retry waits its backoff on Usher's clock.
    await advanceClock(journey.usher.baseUrl, '2m');
    await expectTold(from, ['court']);
  });

  step('the idle timeout, reached by the lifecycle job with nobody coming back, tells the service', async () => {
    await signInTo(page, 'probation');
    const from = receiver.accepted().length;
    await advanceClock(journey.usher.baseUrl, '31m');
    await expectTold(from, ['probation']);
    const config = await configFor('probation');
    await assert.rejects(client.refreshTokenGrant(config, signedIn.probation.tokens.refresh_token), (e) => e.error === 'invalid_grant');
  });

  step('the example court service signs out both ways: its "Sign out" ends Usher\'s session, Usher\'s ends its', async () => {
    const court = await startCourtService(journey.usher, (base) => [
      '--post-logout-redirect-uri',
      `${base}/signed-out`,
      '--backchannel-logout-uri',
      `${base}/backchannel-logout`,
    ]);
    const signInThere = async () => {
      await page.goto(court.base);
      await page.getByRole('link', { name: 'Sign in with Usher' }).click();
      if ((await page.locator('h1').innerText()).trim() === 'Sign in') {
        await submitSignIn(page, OPERATOR.email, OPERATOR.password);
        await fill(page, 'Code from your app', await nextAppCode(journey.usher.baseUrl, keyText));
        await clickButton(page, 'Continue');
      }
      await clickButton(page, 'Continue to Court platform (example)');
      await assertHeading(page, 'Welcome to the court platform');
    };
    try {
      await signInThere();
      // Its "Sign out" goes through Usher's end-session endpoint with the ID token as hint.
      await clickButton(page, 'Sign out');
      await assertHeading(page, 'You have signed out of the court platform');
      await assertTextIncludes(page, 'You have signed out of Usher too', 'the service knows Usher signed out');
      await a11y(page, 'court-service-signed-out');
      await page.goto(`${journey.usher.baseUrl}/home`);
      assertPath(page, '/sign-in', 'the Usher session ended with it');

      // Signed out at Usher: the logout token ends the court service's session.
      await signInThere();
      await page.goto(`${journey.usher.baseUrl}/home`);
      await signOut(page, 'signed-out-court-service', a11y);
      await assertTextIncludes(page, 'Court platform (example)', 'Usher names the service it told');
      const start = Date.now();
      for (;;) {
        await page.goto(court.base);
        if ((await page.locator('h1').innerText()).trim() === 'Sign in to the court platform') break;
        assert.ok(Date.now() - start < 30_000, 'the court service\'s session ends within 30 s');
        await sleep(500);
      }
    } finally {
      court.stop();
    }
  });

  step('no jti was ever used twice, and the service refused nothing Usher sent', async () => {
    assert.equal(new Set(everyJti).size, everyJti.length, `every jti once: ${everyJti}`);
    assert.ok(everyJti.length >= 7, `${everyJti.length} tokens`);
    const refused = receiver.refused().filter((r) => !/replayed jti/.test(r.reason));
    assert.deepEqual(refused, [], 'every token Usher sent verified');
  });
});
