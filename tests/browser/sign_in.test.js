// Signing in, locking, resetting, sessions, changing and expiring passwords, in a real browser:
// the operator sets up an account from the printed link, with codes sent by email as the second
// factor (each sign-in below then gives an emailed code after the password); four wrong
// passwords lock the account (the right one is then refused too, and a lock email is sent);
// "Reset your password" emails a single-use link that, after an emailed code, sets a new
// password and unlocks the account; the sessions page lists two
// browsers and signs the other one out; the password is changed; and 91 days later (on the test
// clock) signing in forces a new password. Every page visited, including pages with form errors,
// is checked with axe and screenshotted.
//
// Run: USHER_BIN=target/debug/usher node --test tests/browser/

import { describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  advanceClock as advanceTestClock,
  assertErrorSummary as assertErrorSummaryText,
  assertHeading,
  assertNoErrorSummary,
  assertSuccessBanner,
  assertTextIncludes,
  checkA11y,
  clickButton,
  clickLink,
  describePage,
  escapeRegExp,
  fill,
  giveEmailedCode,
  normalise,
  openMailbox,
  printedSetupLink,
  readMailbox,
  setUpEmailCodes,
  signOut as signOutAndCheck,
  submitSetupForm,
  submitSignIn,
  tokenLinkIn,
  useJourney,
  visible,
  waitForMessage as waitForMessageAndCheck,
} from './helpers.js';

const OPERATOR = { name: 'Olive Operator', email: 'olive@example.org', password: 'Tr1cky-Horse-42' };
const WRONG_PASSWORD = 'Wr0ng-Horse-Guess';
const RESET_PASSWORD = 'Reset-Horse-Staple-8';
const CHANGED_PASSWORD = 'Change-Horse-Staple-9';
const EXPIRY_PASSWORD = 'Expiry-Horse-Staple-10';
const WEAK_PASSWORD = 'password';

const WRONG_SIGN_IN = 'Enter a correct email address and password';
const HOW_TO_UNLOCK = 'reset your password or ask your organisation administrator';
const LOCK_AFTER = 4;

/** Screenshot names start with this, so they do not clash with other journeys' artifacts. */
const SHOT = 'signin';

describe('sign-in, lock, reset, sessions, change and expiry journey', { timeout: 20 * 60_000 }, () => {
  const journey = useJourney({ shotPrefix: `${SHOT}-` });
  const { step, freshPage } = journey;

  // Carried from step to step.
  let page; // the operator's first browser
  let secondPage; // the operator's second browser (another context: its own cookies)
  let resetLink;
  let mailboxCountBeforeReset = 0;

  const a11y = (p, name) => checkA11y(p, `${SHOT}-${name}`);

  // ----- small page helpers -----------------------------------------------------------------

  /** An error summary matching `pattern`, on a page whose title starts "Error: "; returns its text. */
  async function assertErrorSummary(p, pattern, what) {
    const text = await assertErrorSummaryText(p, pattern, what);
    const title = await p.title();
    assert.ok(title.startsWith('Error: '), `a page with errors should have a title starting "Error: " ${what}; it is "${title}"`);
    return text;
  }

  function assertPath(p, expected, what) {
    const actual = new URL(p.url()).pathname;
    assert.equal(actual, expected, `${what}: expected to be at ${expected}, but the browser is at ${p.url()}`);
  }

  /** The "Value" of the summary-list row whose key is `key`. */
  async function summaryValue(p, key) {
    const row = p.locator('.govuk-summary-list__row').filter({
      has: p.locator('dt', { hasText: new RegExp(`^\\s*${escapeRegExp(key)}\\s*$`) }),
    });
    await visible(row.first(), `a summary-list row "${key}"`, p);
    return normalise(await row.first().locator('dd').first().innerText());
  }

  /** Asserts the sign-in page refused, with the one answer that says how to unlock. */
  async function assertSignInRefused(p, what) {
    await assertHeading(p, 'Sign in');
    assertPath(p, '/sign-in', `${what}, the browser should stay on the sign-in page`);
    const summary = await assertErrorSummary(p, new RegExp(escapeRegExp(WRONG_SIGN_IN)), what);
    assert.ok(
      summary.includes(HOW_TO_UNLOCK),
      `the error ${what} should say how to unlock: "…${HOW_TO_UNLOCK}"; it says: ${summary}`,
    );
    const link = p.locator('.govuk-error-summary a[href="#email"]');
    await visible(link.first(), `the error summary ${what} to link to the email field (#email)`, p);
    // One short message on the field; how to unlock is said once, in the summary.
    const field = normalise(await p.locator('#email-error').innerText());
    assert.equal(field, `Error: ${WRONG_SIGN_IN}`, `the email field ${what} should carry one short message`);
    return summary;
  }

  const signOut = (p, a11yName) => signOutAndCheck(p, a11yName, a11y);

  /** The data rows (rows with cells, not the header) of the sessions table. */
  const sessionRows = (p) =>
    p.getByRole('table').first().getByRole('row').filter({ has: p.getByRole('cell') });

  // ----- the dev mailbox ----------------------------------------------------------------------

  /** waitForMessage with this journey's screenshot names. */
  const waitForMessage = (p, want, what, a11yName) => waitForMessageAndCheck(p, want, what, a11yName, a11y);

  // ----- the test clock -----------------------------------------------------------------------

  /** Moves the server's test clock forward (from the test process: loopback, no cookies). */
  const advanceClock = (span) => advanceTestClock(journey.usher.baseUrl, span);

  // ----- the second factor ----------------------------------------------------------------------

  /** At the second step of signing in (or of a reset link): an emailed code; `name` names the checks. */
  const emailedCode = (p, name) =>
    giveEmailedCode(p, OPERATOR.email, { a11y: name ? (q, n) => a11y(q, `${name}-${n}`) : null });

  /** Signs the operator in with `password` and an emailed code. */
  async function signIn(p, password, name = null) {
    await p.goto('/sign-in');
    await submitSignIn(p, OPERATOR.email, password);
    assertPath(p, '/sign-in/second-factor', 'after the right password');
    await emailedCode(p, name);
  }

  // ----- 1. the operator -----------------------------------------------------------------------

  step('the operator sets up an account from the printed set-up link and signs out', async () => {
    const setupLink = await printedSetupLink(journey.usher);
    ({ page } = await freshPage());
    journey.current = page;
    await page.goto(setupLink);
    await assertHeading(page, 'Set up your operator account');
    await a11y(page, 'setup-form');
    await submitSetupForm(page, OPERATOR);
    await setUpEmailCodes(page, OPERATOR, { a11y });
    await signIn(page, OPERATOR.password, 'first');
    await assertHeading(page, 'Operator home');
    await a11y(page, 'operator-home-after-setup');
    await signOut(page, 'signed-out-after-setup');
  });

  // ----- 2. wrong passwords lock the account ------------------------------------------------------

  step('the sign-in page offers one way to get help: "Forgotten your password or lost your device?"', async () => {
    await page.goto('/sign-in');
    await assertHeading(page, 'Sign in');
    await visible(
      page.getByRole('link', { name: 'Forgotten your password or lost your device?', exact: true }),
      'a link "Forgotten your password or lost your device?" on the sign-in page',
      page,
    );
    const help = page.locator('main a[href="/recover"], main a[href="/reset-password"]');
    assert.equal(await help.count(), 1, `the sign-in page should offer one way to get help.\n${await describePage(page)}`);
    await assertNoErrorSummary(page, 'on a fresh sign-in page');
    await a11y(page, 'sign-in');
  });

  for (let attempt = 1; attempt <= LOCK_AFTER; attempt += 1) {
    step(`wrong password ${attempt} of ${LOCK_AFTER} is refused with the one answer that says how to unlock`, async () => {
      if (attempt > 1) await page.goto('/sign-in');
      await submitSignIn(page, OPERATOR.email, WRONG_PASSWORD);
      await assertSignInRefused(page, `after wrong password ${attempt} of ${LOCK_AFTER}`);
      const email = await page.getByLabel('Email address', { exact: true }).inputValue();
      assert.equal(email, OPERATOR.email, 'the sign-in form should keep the email address after a refusal');
      await a11y(page, `sign-in-wrong-password-${attempt}`);
    });
  }

  step('the right password is refused too once the account is locked', async () => {
    await page.goto('/sign-in');
    await submitSignIn(page, OPERATOR.email, OPERATOR.password);
    await assertSignInRefused(page, 'after the right password on a locked account');
    await a11y(page, 'sign-in-locked');
  });

  step('the dev mailbox shows the "account is locked" email', async () => {
    await waitForMessage(
      page,
      (m) => /account is locked/i.test(m.title) && m.to === OPERATOR.email,
      `email to ${OPERATOR.email} with a subject containing "account is locked"`,
      'dev-mailbox-locked',
    );
  });

  // ----- 3. resetting the password ----------------------------------------------------------------

  step('"Forgotten your password or lost your device?" leads to the reset form; an empty form shows an error', async () => {
    await page.goto('/sign-in');
    await assertHeading(page, 'Sign in');
    await clickLink(page, 'Forgotten your password or lost your device?');
    await assertHeading(page, 'Forgotten your password or lost your device?');
    assertPath(page, '/recover', 'after "Forgotten your password or lost your device?"');
    await a11y(page, 'recover');
    await clickLink(page, 'Reset your password');
    await assertHeading(page, 'Reset your password');
    await a11y(page, 'reset-request');
    await clickButton(page, 'Send reset link');
    await assertHeading(page, 'Reset your password');
    await assertErrorSummary(page, /email/i, 'after sending the reset form empty');
    await visible(page.locator('#email-error'), 'an error message by the email field', page);
    await a11y(page, 'reset-request-empty');
  });

  step('asking for a reset link for the operator says "Check your email"', async () => {
    // Remember how many reset emails there were, to be sure to read the new one.
    await openMailbox(page);
    mailboxCountBeforeReset = (await readMailbox(page)).filter((m) => /Reset your/.test(m.title)).length;
    await a11y(page, 'dev-mailbox-before-reset');
    await page.goto('/reset-password');
    await assertHeading(page, 'Reset your password');
    await fill(page, 'Email address', OPERATOR.email);
    await clickButton(page, 'Send reset link');
    await assertHeading(page, 'Check your email');
    await assertNoErrorSummary(page, 'after asking for a reset link');
    await a11y(page, 'reset-check-email');
  });

  step('the dev mailbox holds the reset email with a link to /reset-password/<43 chars>', async () => {
    const mail = await waitForMessage(
      page,
      (m, _i, all) =>
        /Reset your/.test(m.title) &&
        m.to === OPERATOR.email &&
        all.filter((x) => /Reset your/.test(x.title)).length > mailboxCountBeforeReset,
      `new email to ${OPERATOR.email} with a subject containing "Reset your"`,
      'dev-mailbox-reset',
    );
    resetLink = tokenLinkIn(mail, journey.usher.baseUrl, 'reset-password', 'the reset email');
  });

  step('the reset link asks for the second factor first, then opens "Choose a new password"', async () => {
    await page.goto(resetLink);
    const caption = normalise(await page.locator('.govuk-caption-l').first().innerText());
    assert.equal(caption, 'Reset your password – step 1 of 2', `the reset link's second-factor step should say so.\n${await describePage(page)}`);
    await emailedCode(page, 'reset');
    await assertHeading(page, 'Choose a new password');
  });

  step('"Choose a new password" refuses a weak password', async () => {
    await assertHeading(page, 'Choose a new password');
    await assertTextIncludes(page, OPERATOR.email, 'the reset form names the account');
    await a11y(page, 'reset-choose');
    await fill(page, 'Create a password', WEAK_PASSWORD);
    await fill(page, 'Confirm your password', WEAK_PASSWORD);
    await clickButton(page, 'Save new password');
    await assertHeading(page, 'Choose a new password');
    await assertErrorSummary(page, /\S/, `after a weak password ("${WEAK_PASSWORD}")`);
    await visible(page.locator('#password-error-1'), 'an error message by the "Create a password" field', page);
    await a11y(page, 'reset-choose-weak');
  });

  step('a strong new password is saved and the browser lands on the sign-in page', async () => {
    await fill(page, 'Create a password', RESET_PASSWORD);
    await fill(page, 'Confirm your password', RESET_PASSWORD);
    await clickButton(page, 'Save new password');
    await assertHeading(page, 'Sign in');
    assertPath(page, '/sign-in', 'after saving the new password');
    await assertSuccessBanner(page, 'after resetting the password', 'Your password has been changed');
    await assertNoErrorSummary(page, 'after resetting the password');
    await a11y(page, 'sign-in-after-reset');
  });

  step('the used reset link cannot be used again', async () => {
    await page.goto(resetLink);
    await assertHeading(page, 'This link has already been used');
    await a11y(page, 'reset-link-used');
  });

  // ----- 4. signing in with the new password; sessions -----------------------------------------------

  step('the new password signs in (the reset unlocked the account); home shows when it expires', async () => {
    await signIn(page, RESET_PASSWORD);
    await assertHeading(page, 'Operator home');
    const expiry = await summaryValue(page, 'Password');
    assert.match(expiry, /^Expires on \S/, `the "Password" row on the home page should read "Expires on <date>"; it reads "${expiry}"`);
    await a11y(page, 'operator-home');
  });

  step('"Your sessions" lists this session', async () => {
    await clickLink(page, 'Your sessions');
    await assertHeading(page, 'Your sessions');
    assertPath(page, '/account/sessions', 'after following "Your sessions"');
    await visible(page.getByRole('table').first(), 'a table of sessions', page);
    const rows = sessionRows(page);
    assert.equal(await rows.count(), 1, `one session should be listed.\n${await describePage(page)}`);
    await visible(rows.first().getByText('This session', { exact: true }), 'the tag "This session" in the row', page);
    await a11y(page, 'sessions-one');
  });

  step('the operator signs in in a second browser too', async () => {
    ({ page: secondPage } = await freshPage());
    journey.current = secondPage;
    await secondPage.goto('/sign-in');
    await a11y(secondPage, 'second-sign-in');
    await submitSignIn(secondPage, OPERATOR.email, RESET_PASSWORD);
    await emailedCode(secondPage, null);
    await assertHeading(secondPage, 'Operator home');
    await a11y(secondPage, 'second-operator-home');
  });

  step('the first browser lists two sessions and signs out of the other one', async () => {
    journey.current = page;
    await page.reload();
    await assertHeading(page, 'Your sessions');
    const rows = sessionRows(page);
    assert.equal(await rows.count(), 2, `two sessions should be listed after signing in in a second browser.\n${await describePage(page)}`);
    const tagged = rows.filter({ has: page.getByText('This session', { exact: true }) });
    assert.equal(await tagged.count(), 1, `exactly one row should be tagged "This session".\n${await describePage(page)}`);
    await a11y(page, 'sessions-two');
    await clickButton(page, 'Sign out of all other sessions');
    await assertHeading(page, 'Your sessions');
    await assertSuccessBanner(page, 'after "Sign out of all other sessions"', 'All your other sessions are signed out');
    assert.equal(await sessionRows(page).count(), 1, `one session should be left.\n${await describePage(page)}`);
    await a11y(page, 'sessions-others-ended');
  });

  step('the second browser is signed out: /home goes to the sign-in page', async () => {
    journey.current = secondPage;
    await secondPage.goto('/home');
    await assertHeading(secondPage, 'Sign in');
    assertPath(secondPage, '/sign-in', 'the signed-out browser opening /home');
    await a11y(secondPage, 'second-signed-out');
  });

  // ----- 5. changing the password --------------------------------------------------------------------

  step('"Change your password" refuses a wrong current password', async () => {
    journey.current = page;
    await page.goto('/home');
    await assertHeading(page, 'Operator home');
    await clickLink(page, 'Change your password');
    await assertHeading(page, 'Change your password');
    await a11y(page, 'change-password');
    await fill(page, 'Current password', WRONG_PASSWORD);
    await fill(page, 'Create a password', CHANGED_PASSWORD);
    await fill(page, 'Confirm your password', CHANGED_PASSWORD);
    await clickButton(page, 'Change password');
    await assertHeading(page, 'Change your password');
    await assertErrorSummary(page, /Your current password is not right/, 'after a wrong current password');
    await visible(page.locator('#current_password-error'), 'an error message by the "Current password" field', page);
    await a11y(page, 'change-password-wrong-current');
  });

  step('the password is changed with the right current password', async () => {
    await fill(page, 'Current password', RESET_PASSWORD);
    await fill(page, 'Create a password', CHANGED_PASSWORD);
    await fill(page, 'Confirm your password', CHANGED_PASSWORD);
    await clickButton(page, 'Change password');
    await assertHeading(page, 'Operator home');
    assertPath(page, '/home', 'after changing the password');
    await a11y(page, 'operator-home-after-change');
  });

  // ----- 6. the password expires ------------------------------------------------------------------

  step('91 days later, signing in leads to "Your password has expired"', async () => {
    await advanceClock('91d');
    // The session has timed out on the server; signing out still works and clears the cookie.
    await signOut(page, 'signed-out-after-91-days');
    await page.goto('/sign-in');
    await a11y(page, 'sign-in-after-91-days');
    await submitSignIn(page, OPERATOR.email, CHANGED_PASSWORD);
    assertPath(page, '/sign-in/second-factor', 'the right (expired) password first asks for the second factor');
    await emailedCode(page, null);
    await assertHeading(page, 'Your password has expired');
    assertPath(page, '/account/password', 'signing in with an expired password');
    await a11y(page, 'password-expired');
    // Nothing else is reachable until the password is changed.
    await page.goto('/account/sessions');
    await assertHeading(page, 'Your password has expired');
    await a11y(page, 'password-expired-from-sessions');
  });

  step('changing the expired password leads to the page asked for, once', async () => {
    await fill(page, 'Current password', CHANGED_PASSWORD);
    await fill(page, 'Create a password', EXPIRY_PASSWORD);
    await fill(page, 'Confirm your password', EXPIRY_PASSWORD);
    await clickButton(page, 'Change password');
    // The sessions page was asked for while the password had expired: that is where the change ends.
    await assertHeading(page, 'Your sessions');
    assertPath(page, '/account/sessions', 'after changing the expired password (the page asked for before)');
    await page.goto('/home');
    await assertHeading(page, 'Operator home');
    assertPath(page, '/home', 'the home page after changing the expired password');
    const expiry = await summaryValue(page, 'Password');
    assert.match(expiry, /^Expires on \S/, `the "Password" row should read "Expires on <date>"; it reads "${expiry}"`);
    await a11y(page, 'operator-home-after-expiry');
  });
});
