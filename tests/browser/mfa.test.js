// Second factors in a real browser, for a user with a mobile whom an administrator added:
// at his first sign-in he must set up a second factor; a code texted to his mobile lets him add
// an authenticator app, whose key he reads off the QR page ("I cannot scan the QR code") and
// whose codes this test computes itself (RFC 6238, HMAC-SHA1, with node:crypto, from the
// server's test clock); he is shown 10 recovery codes and signed out. He signs in with the app
// (a code is accepted once only: the test clock moves on 30 s for the next one), adds a recovery
// phone (after entering his password again, with a texted code), then, as if he had lost his
// phone, recovers with a code texted to the recovery phone, which removes his old app, and sets
// up a new one. Finally a recovery code signs him in. Every distinct page is checked with axe and
// screenshotted.
//
// Run: USHER_BIN=target/debug/usher node --test tests/browser/

import { describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  activateAccount,
  advanceClock,
  assertErrorSummary,
  assertHeading,
  assertNoErrorSummary,
  assertPath,
  assertSuccessBanner,
  assertTextIncludes,
  base32Decode,
  checkA11y,
  clickButton,
  clickLink,
  clockNow,
  codeSentBy,
  describePage,
  fill,
  firstSignInWithEmailCodes,
  normalise,
  pageText,
  printedSetupLink,
  recoveryCodesOn,
  setUpEmailCodes,
  signInWithEmailCode,
  signOut,
  submitSetupForm,
  submitSignIn,
  totpCode,
  useJourney,
  visible,
  waitForMessage,
} from './helpers.js';

const OPERATOR = { name: 'Olive Operator', email: 'olive@example.org', password: 'Tr1cky-Horse-42' };
const ORGANISATION = { name: 'Smith & Jones LLP', kind: 'Law firm' };
const ADMIN = {
  name: 'Ada Admin',
  email: 'ada@smithjones.example',
  mobile: '07700 900001',
  e164: '+447700900001',
  password: 'Adm1n-Horse-Battery',
};
const USER = {
  name: 'Brian Barrister',
  email: 'brian@smithjones.example',
  mobile: '07700 900123',
  e164: '+447700900123',
  lastFour: '0123',
  password: 'Us3r-Correct-Staple',
};
const RECOVERY_PHONE = { typed: '07700 900456', e164: '+447700900456', lastFour: '0456' };
const NON_UK_PHONE = '+33 6 12 34 56 78';
const WRONG_PASSWORD = 'Wr0ng-Horse-Guess';

/** Screenshot names start with this, so they do not clash with other journeys' artifacts. */
const SHOT = 'mfa';

describe('second factor journey: authenticator app, recovery phone, lost device', { timeout: 20 * 60_000 }, () => {
  const journey = useJourney({ shotPrefix: `${SHOT}-` });
  const { step, freshPage } = journey;

  // Carried from step to step.
  let page; // the browser of whoever is acting
  let brianPage;
  let firstKey; // the first app's key as shown (base32, grouped)
  let firstCodeUnix; // the clock when the first app was confirmed
  let firstRecoveryCodes;
  let secondKey;
  let secondRecoveryCodes;

  const a11y = (p, name) => checkA11y(p, `${SHOT}-${name}`);

  // ----- small helpers ----------------------------------------------------------------------

  /** The server's test clock now, in Unix seconds. */
  const serverUnix = async () => (await clockNow(journey.usher.baseUrl)).unix;

  /** The 6-digit code an authenticator app with `keyText` shows at the server's `unix`. */
  const appCode = (keyText, unix) => totpCode(base32Decode(keyText), unix);

  /** A 6-digit code that the app with `keyText` does not show within a step of `unix`. */
  function wrongAppCode(keyText, unix) {
    const near = new Set([-1, 0, 1].map((d) => appCode(keyText, unix + d * 30)));
    for (let d = 5; ; d += 1) {
      const c = appCode(keyText, unix + d * 30);
      if (!near.has(c)) return c;
    }
  }

  /** Asserts the page is the second step of signing in with the heading `heading`. */
  async function assertSecondStep(p, heading, what) {
    await assertHeading(p, heading);
    const caption = normalise(await p.locator('.govuk-caption-l').first().innerText());
    assert.equal(caption, 'Sign in – second step', `${what}: the caption should say "Sign in – second step".\n${await describePage(p)}`);
  }

  /**
   * On "Set up a second factor" for Brian: "Confirm and send code", the texted code, "Continue";
   * lands on "Scan the QR code". `name` prefixes the checks (none when null).
   */
  async function passTextedCheck(p, name) {
    await assertHeading(p, 'Set up a second factor');
    const code = await codeSentBy(
      p,
      USER.e164,
      () => clickButton(p, 'Confirm and send code'),
      name && `${SHOT}-${name}-dev-mailbox-check-code`,
    );
    await assertHeading(p, 'Enter the code we texted you');
    assertPath(p, '/set-up/app/check', 'after "Confirm and send code"');
    const caption = normalise(await p.locator('.govuk-caption-l').first().innerText());
    assert.equal(caption, 'Add an authenticator app – step 1 of 2', `the check page's caption.\n${await describePage(p)}`);
    await assertTextIncludes(p, `ending ${USER.lastFour}`, 'the check page names the end of the mobile number');
    return code;
  }

  /**
   * On "Scan the QR code": checks the QR code is there, opens "I cannot scan the QR code" and
   * returns the key shown, checked against the otpauth:// link beside it.
   */
  async function readKey(p, name) {
    await assertHeading(p, 'Scan the QR code');
    assertPath(p, '/set-up/app', 'the QR code page');
    const svg = p.locator('.usher-qr-box svg');
    await visible(svg, 'an inline SVG QR code in .usher-qr-box', p);
    const box = await svg.boundingBox();
    assert.ok(box && box.width >= 100 && box.height >= 100, `the QR code should be drawn at least 100 px square; it is ${JSON.stringify(box)}`);
    assert.equal(await svg.getAttribute('role'), 'img', 'the QR code SVG should have role="img"');
    assert.ok(normalise(await svg.getAttribute('aria-label')).length > 0, 'the QR code SVG should have an aria-label');
    assert.ok((await svg.locator('path, rect').count()) > 0, 'the QR code SVG should draw something');

    const key = p.locator('#secret-key');
    assert.equal(await key.isVisible(), false, 'the key should be hidden until "I cannot scan the QR code" is opened');
    if (name) await a11y(p, `${name}-qr`);
    await p.locator('details summary', { hasText: 'I cannot scan the QR code' }).click();
    await visible(key, 'the key (#secret-key) after opening "I cannot scan the QR code"', p);
    const keyText = normalise(await key.innerText());
    assert.match(keyText, /^([A-Z2-7]{4} )*[A-Z2-7]{1,4}$/, `the key should be base32 in groups of four separated by spaces; it is "${keyText}"`);
    assert.ok(base32Decode(keyText).length >= 16, `the key should hold at least 128 bits; "${keyText}" holds ${base32Decode(keyText).length} bytes`);

    const link = p.getByRole('link', { name: 'add to authenticator app', exact: true });
    await visible(link, 'an "add to authenticator app" otpauth:// link', p);
    const uri = new URL(await link.getAttribute('href'));
    assert.equal(uri.protocol, 'otpauth:', `the link should be otpauth://; it is ${uri.href}`);
    assert.equal(uri.host, 'totp', `the link should be otpauth://totp/…; it is ${uri.href}`);
    assert.equal(uri.searchParams.get('secret'), keyText.replace(/ /g, ''), 'the otpauth:// link should carry the key shown on the page');
    for (const [param, expected] of [['algorithm', 'SHA1'], ['digits', '6'], ['period', '30']]) {
      const value = uri.searchParams.get(param);
      assert.ok(value === null || value === expected, `otpauth:// ${param} should be ${expected} (or left to the default); it is ${value}`);
    }
    assert.ok(decodeURIComponent(uri.pathname).includes(USER.email), `the otpauth:// label should name the account; it is ${uri.pathname}`);
    if (name) await a11y(p, `${name}-qr-key-shown`);
    return keyText;
  }

  /** Enters the app code of `keyText` at the server's clock and presses "Save device". */
  async function saveDevice(p, keyText) {
    const unix = await serverUnix();
    await fill(p, 'Code from your authenticator app', appCode(keyText, unix));
    await clickButton(p, 'Save device');
    return unix;
  }

  /** After a factor was saved: the confirmation, 10 recovery codes, and the person signed out. */
  async function assertAppAdded(p, name) {
    await assertHeading(p, 'Authenticator app added');
    await assertNoErrorSummary(p, 'after saving the device');
    const codes = await recoveryCodesOn(p, 'after adding the authenticator app');
    await visible(p.getByRole('link', { name: 'Sign in again', exact: true }), 'a "Sign in again" link', p);
    assert.equal(await p.getByRole('button', { name: 'Sign out', exact: true }).count(), 0, 'the person is signed out: no "Sign out" button');
    await a11y(p, name);
    await p.goto('/home');
    await assertHeading(p, 'Sign in');
    return codes;
  }

  /** Signs Brian in as far as the second step. */
  async function passwordStep(p) {
    await p.goto('/sign-in');
    await submitSignIn(p, USER.email, USER.password);
    assertPath(p, '/sign-in/second-factor', 'after Brian\'s password');
  }

  // ----- 0. the test's own authenticator ---------------------------------------------------------

  step('the test computes RFC 6238 codes (SHA-1 test vectors) and reads base32 keys', async () => {
    const key = Buffer.from('12345678901234567890');
    for (const [unix, expected] of [[59, '94287082'], [1111111109, '07081804'], [1234567890, '89005924'], [20000000000, '65353130']]) {
      assert.equal(totpCode(key, unix, { digits: 8 }), expected, `RFC 6238 SHA-1 vector at T=${unix}`);
    }
    assert.equal(totpCode(key, 59), '287082', 'the 6-digit code is the last 6 digits');
    assert.deepEqual(base32Decode('GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ'), key, 'base32 with spaces');
  });

  // ----- 1. an operator, an organisation, an administrator and a user ------------------------------

  step('the operator sets up an account, registers an organisation and invites its administrator', async () => {
    ({ page } = await freshPage());
    journey.current = page;
    await page.goto(await printedSetupLink(journey.usher));
    await submitSetupForm(page, OPERATOR);
    await setUpEmailCodes(page, OPERATOR, { a11y: null });
    await signInWithEmailCode(page, OPERATOR, { a11y: null });
    await assertHeading(page, 'Operator home');
    await page.goto('/operator/organisations/new');
    await assertHeading(page, 'Register an organisation');
    await fill(page, 'Organisation name', ORGANISATION.name);
    await page.getByRole('radio', { name: ORGANISATION.kind, exact: true }).check();
    await clickButton(page, 'Register organisation');
    await assertHeading(page, ORGANISATION.name);
    await clickLink(page, 'Invite an administrator');
    await fill(page, 'Full name', ADMIN.name);
    await fill(page, 'Email address', ADMIN.email);
    await fill(page, 'Mobile phone number', ADMIN.mobile);
    await clickButton(page, 'Send invitation');
    await assertHeading(page, ORGANISATION.name);
    await signOut(page, 'operator-signed-out', async () => {});
  });

  step(`${ADMIN.name} activates her account and adds ${USER.name}, who has a mobile`, async () => {
    await activateAccount(page, ADMIN, journey.usher.baseUrl);
    await firstSignInWithEmailCodes(page, ADMIN, { a11y: null });
    await assertHeading(page, 'Administrator home');
    await page.goto('/admin/users/new');
    await assertHeading(page, 'Add a user');
    await fill(page, 'Full name', USER.name);
    await fill(page, 'Email address', USER.email);
    await fill(page, 'Mobile phone number', USER.mobile);
    await clickButton(page, 'Add user');
    await assertHeading(page, USER.name);
    await signOut(page, 'admin-signed-out', async () => {});
  });

  step(`${USER.name} activates his account`, async () => {
    ({ page: brianPage } = await freshPage());
    page = brianPage;
    journey.current = page;
    await activateAccount(page, USER, journey.usher.baseUrl);
  });

  // ----- 2. the first sign-in: setting up an authenticator app ------------------------------------------

  step('his first sign-in leads to "Set up a second factor"; other pages lead back there', async () => {
    await page.goto('/sign-in');
    await submitSignIn(page, USER.email, USER.password);
    await assertHeading(page, 'Set up a second factor');
    assertPath(page, '/set-up', 'after the first sign-in without a second factor');
    const text = await assertTextIncludes(page, `ending ${USER.lastFour}`, 'the set-up page names the end of the mobile number');
    assert.ok(!text.includes(USER.e164) && !text.includes(USER.mobile), `the set-up page should show only the last 4 digits of the mobile.\n${await describePage(page)}`);
    await visible(page.getByRole('button', { name: 'Confirm and send code', exact: true }), 'a "Confirm and send code" button', page);
    await visible(page.getByRole('link', { name: 'Use codes sent by email instead', exact: true }), 'a "Use codes sent by email instead" link', page);
    await a11y(page, 'set-up');
    for (const elsewhere of ['/home', '/account/security', '/account/sessions']) {
      await page.goto(elsewhere);
      await assertHeading(page, 'Set up a second factor');
      assertPath(page, '/set-up', `opening ${elsewhere} at the set-up stage`);
    }
  });

  step('"Confirm and send code" texts a code; a wrong code is refused', async () => {
    const code = await passTextedCheck(page, 'first');
    await a11y(page, 'set-up-check');
    const wrong = code === '000000' ? '000001' : '000000';
    await fill(page, 'Code from the text message', wrong);
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Enter the code we texted you');
    await assertErrorSummary(page, /code/i, `after the wrong code ${wrong}`);
    await visible(page.locator('#code-error'), 'an error message by the code field', page);
    await a11y(page, 'set-up-check-wrong-code');
    // The texted code still works after one wrong guess.
    await fill(page, 'Code from the text message', code);
    await clickButton(page, 'Continue');
    await assertNoErrorSummary(page, 'after the right texted code');
    await assertHeading(page, 'Scan the QR code');
  });

  step('the QR code page shows an SVG QR code and, on request, the key as text', async () => {
    firstKey = await readKey(page, 'first');
  });

  step('a code the app would not show is refused, and the same key is shown again', async () => {
    const unix = await serverUnix();
    const wrong = wrongAppCode(firstKey, unix);
    await fill(page, 'Code from your authenticator app', wrong);
    await clickButton(page, 'Save device');
    await assertHeading(page, 'Scan the QR code');
    await assertErrorSummary(page, /code/i, `after the wrong app code ${wrong}`);
    await visible(page.locator('#code-error'), 'an error message by the app code field', page);
    await page.locator('details summary', { hasText: 'I cannot scan the QR code' }).click();
    const again = normalise(await page.locator('#secret-key').innerText());
    assert.equal(again, firstKey, 'after a wrong code the same key should be shown (the app already holds it)');
    await a11y(page, 'set-up-app-wrong-code');
  });

  step('the code computed from the key saves the app: 10 recovery codes, then signed out', async () => {
    firstCodeUnix = await saveDevice(page, firstKey);
    firstRecoveryCodes = await assertAppAdded(page, 'app-added');
  });

  // ----- 3. signing in with the app ------------------------------------------------------------------

  step('signing in asks for the app code; the code already used (same 30 s step) is refused', async () => {
    await passwordStep(page);
    await assertSecondStep(page, 'Enter the code from your authenticator app', 'the second step with an app');
    await visible(page.getByRole('link', { name: 'Use a recovery code', exact: true }), 'a "Use a recovery code" link', page);
    await visible(
      page.getByRole('link', { name: 'Forgotten your password or lost your device?', exact: true }),
      'a "Forgotten your password or lost your device?" link on the second step',
      page,
    );
    await a11y(page, 'second-factor-app');
    const unix = await serverUnix();
    assert.equal(Math.floor(unix / 30), Math.floor(firstCodeUnix / 30), 'the test clock should not have moved since the app was saved');
    await fill(page, 'Code from your app', appCode(firstKey, unix));
    await clickButton(page, 'Continue');
    await assertSecondStep(page, 'Enter the code from your authenticator app', 'after reusing a code');
    await assertErrorSummary(page, /already been used/, 'after entering the code already used to save the app');
    await a11y(page, 'second-factor-app-code-reused');
  });

  step('30 s later (test clock) the app\'s new code signs him in', async () => {
    const { unix } = await advanceClock(journey.usher.baseUrl, '30s');
    assert.equal(unix, await serverUnix(), 'the clock answers what it was moved to');
    await fill(page, 'Code from your app', appCode(firstKey, unix));
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Your account');
    assertPath(page, '/home', 'after the app code');
    await a11y(page, 'user-home');
  });

  // ----- 4. a recovery phone --------------------------------------------------------------------------

  step('the security page lists the app, 10 recovery codes and no recovery phone', async () => {
    await page.goto('/account/security');
    await assertHeading(page, 'Security');
    const factors = page.getByRole('table').first().getByRole('row').filter({ has: page.getByRole('cell') });
    assert.equal(await factors.count(), 1, `one second factor should be listed.\n${await describePage(page)}`);
    await visible(factors.first().getByRole('cell', { name: 'Authenticator app', exact: true }), 'a row "Authenticator app"', page);
    await assertTextIncludes(page, 'You have 10 unused recovery codes', 'the security page counts the recovery codes');
    await assertTextIncludes(page, 'You have no recovery phone', 'the security page says there is no recovery phone');
    await a11y(page, 'security');
  });

  step('"Add a recovery phone number" asks for the password again; a wrong one is refused', async () => {
    await clickLink(page, 'Add a recovery phone number');
    await assertHeading(page, 'Enter your password');
    assertPath(page, '/account/confirm-password', 'after "Add a recovery phone number"');
    await a11y(page, 'confirm-password');
    await fill(page, 'Password', WRONG_PASSWORD);
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Enter your password');
    await assertErrorSummary(page, /password/i, 'after a wrong password');
    await visible(page.locator('#password-error'), 'an error message by the password field', page);
    await a11y(page, 'confirm-password-wrong');
  });

  step('the right password leads to "Recovery phone number"; a number outside the UK is refused', async () => {
    await fill(page, 'Password', USER.password);
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Recovery phone number');
    assertPath(page, '/account/security/recovery-phone', 'after entering the password again');
    await a11y(page, 'recovery-phone');
    await fill(page, 'Mobile phone number', NON_UK_PHONE);
    await clickButton(page, 'Send code');
    await assertHeading(page, 'Recovery phone number');
    await assertErrorSummary(page, /\S/, `after the non-UK number ${NON_UK_PHONE}`);
    await visible(page.locator('#phone-error'), 'an error message by the phone field', page);
    await a11y(page, 'recovery-phone-not-uk');
  });

  step(`a UK number gets a texted code, which saves it as the recovery phone`, async () => {
    await fill(page, 'Mobile phone number', RECOVERY_PHONE.typed);
    const code = await codeSentBy(page, RECOVERY_PHONE.e164, () => clickButton(page, 'Send code'), `${SHOT}-dev-mailbox-recovery-phone`);
    await assertHeading(page, 'Recovery phone number');
    await assertNoErrorSummary(page, 'after sending a code to the recovery phone');
    await assertTextIncludes(page, `ending ${RECOVERY_PHONE.lastFour}`, 'the code page names the end of the number');
    await a11y(page, 'recovery-phone-code');
    await fill(page, 'Code from the text message', code);
    await clickButton(page, 'Save recovery phone');
    await assertHeading(page, 'Security');
    await assertSuccessBanner(page, 'after saving the recovery phone', 'Your recovery phone has been saved.');
    await assertTextIncludes(page, `ending ${RECOVERY_PHONE.lastFour}`, 'the security page names the recovery phone');
    await a11y(page, 'security-recovery-phone-saved');
  });

  // ----- 5. a lost device -----------------------------------------------------------------------------

  step('after signing in with the password, "lost your device?" leads to the lost-device page', async () => {
    await signOut(page, 'signed-out', a11y);
    await passwordStep(page);
    await assertSecondStep(page, 'Enter the code from your authenticator app', 'the second step');
    await clickLink(page, 'Forgotten your password or lost your device?');
    await assertHeading(page, 'Lost your device?');
    assertPath(page, '/sign-in/lost-device', 'after "Forgotten your password or lost your device?"');
    await assertTextIncludes(page, `ending ${RECOVERY_PHONE.lastFour}`, 'the lost-device page names the recovery phone');
    await a11y(page, 'lost-device');
  });

  step('a code texted to the recovery phone removes the old app and leads to set-up', async () => {
    const code = await codeSentBy(page, RECOVERY_PHONE.e164, () => clickButton(page, 'Send code'), `${SHOT}-dev-mailbox-lost-device`);
    await assertHeading(page, 'Lost your device?');
    await assertNoErrorSummary(page, 'after sending the recovery text');
    await a11y(page, 'lost-device-code-sent');
    await fill(page, 'Code from the text message', code);
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Set up a second factor');
    const url = new URL(page.url());
    assert.equal(`${url.pathname}${url.search}`, '/set-up?done=recovered', `after recovering, the browser should be at /set-up?done=recovered; it is at ${page.url()}`);
    await assertSuccessBanner(page, 'after recovering with the texted code', 'Your old second factors have been removed');
    await a11y(page, 'set-up-recovered');
    const { page: mailbox } = await freshPage();
    await waitForMessage(
      mailbox,
      (m) => m.to === USER.email && /second factors were removed/.test(m.title),
      `an email to ${USER.email} saying his second factors were removed`,
      null,
      async () => {},
    );
    await mailbox.close();
  });

  step('he sets up a new app (new key, new recovery codes; 30 s after his last sign-in) and is signed out', async () => {
    const code = await passTextedCheck(page, null);
    await fill(page, 'Code from the text message', code);
    await clickButton(page, 'Continue');
    secondKey = await readKey(page, null);
    assert.notEqual(secondKey, firstKey, 'the new app should get a new key');
    // A step is accepted once per person, whichever app: his last sign-in used this 30 s step
    // (the clock has not moved since), so the new app's code is refused until the next step.
    await saveDevice(page, secondKey);
    await assertHeading(page, 'Scan the QR code');
    await assertErrorSummary(page, /already been used/, 'after a code of the step his last sign-in used');
    await advanceClock(journey.usher.baseUrl, '30s');
    await saveDevice(page, secondKey);
    secondRecoveryCodes = await assertAppAdded(page, 'app-added-after-recovery');
    assert.ok(
      secondRecoveryCodes.every((c) => !firstRecoveryCodes.includes(c)),
      'the recovery codes made after recovering should all be new',
    );
  });

  step('30 s later the old app\'s code is refused and the new app\'s code signs him in', async () => {
    const { unix } = await advanceClock(journey.usher.baseUrl, '30s');
    await passwordStep(page);
    await assertSecondStep(page, 'Enter the code from your authenticator app', 'the second step with the new app');
    const oldCode = appCode(firstKey, unix);
    assert.notEqual(oldCode, appCode(secondKey, unix), 'the two keys happen to give the same code now; run again');
    await fill(page, 'Code from your app', oldCode);
    await clickButton(page, 'Continue');
    await assertSecondStep(page, 'Enter the code from your authenticator app', 'after the old app\'s code');
    await assertErrorSummary(page, /not right/, 'after the removed app\'s code');
    await a11y(page, 'second-factor-app-wrong-code');
    await fill(page, 'Code from your app', appCode(secondKey, unix));
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Your account');
  });

  // ----- 6. a recovery code ----------------------------------------------------------------------------

  step('a recovery code signs him in once; old recovery codes are refused', async () => {
    await signOut(page, 'signed-out-again', async () => {});
    await passwordStep(page);
    await clickLink(page, 'Use a recovery code');
    await assertSecondStep(page, 'Enter a recovery code', 'after "Use a recovery code"');
    await a11y(page, 'second-factor-recovery-code');
    await fill(page, 'Recovery code', firstRecoveryCodes[0]);
    await clickButton(page, 'Continue');
    await assertSecondStep(page, 'Enter a recovery code', 'after an old recovery code');
    await assertErrorSummary(page, /\S/, 'after a recovery code from before the recovery');
    await a11y(page, 'second-factor-recovery-code-wrong');
    await fill(page, 'Recovery code', secondRecoveryCodes[0]);
    await clickButton(page, 'Continue');
    await assertHeading(page, 'Security');
    await assertSuccessBanner(page, 'after signing in with a recovery code', 'You signed in with a recovery code');
    await assertTextIncludes(page, 'You have 9 unused recovery codes', 'one recovery code is used');
    await a11y(page, 'security-after-recovery-code');
    const text = await pageText(page);
    assert.ok(text.includes(`ending ${RECOVERY_PHONE.lastFour}`), `the recovery phone is kept after recovering.\n${await describePage(page)}`);
  });
});
