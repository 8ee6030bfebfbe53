// The operator set-up journey in a real browser: the first operator follows the set-up link the
// server prints, creates an account, sets up codes sent by email as the second factor (required
// by default), signs in with an emailed code, signs out and back in, reads the dev mailbox; and
// signing in (password and emailed code) works with JavaScript turned off.
//
// Run: USHER_BIN=target/debug/usher node --test tests/browser/

import { before, describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  ACTION_TIMEOUT_MS,
  assertHeading,
  assertPath,
  assertSignInOffered,
  checkA11y,
  checkA11yWithoutScripts,
  clickButton,
  describePage,
  escapeRegExp,
  giveEmailedCode,
  navigateBy,
  openMailbox,
  pageText,
  printedSetupLink,
  screenshot,
  setUpEmailCodes,
  signInWithEmailCode,
  submitSetupForm,
  submitSignIn,
  useJourney,
} from './helpers.js';

const OPERATOR = {
  name: 'Olive Operator',
  email: 'olive@example.org',
  password: 'Tr1cky-Horse-42',
};
const SENDER_ADDRESS = 'noreply@usher.localhost';

describe('operator set-up journey', { timeout: 15 * 60_000 }, () => {
  const journey = useJourney({ stepLimit: false });
  const { step } = journey;
  let context;
  let page;
  let setupLink;

  before(async () => {
    ({ context, page } = await journey.freshPage());
    journey.current = page;
  });

  step('the server prints where to open it and the set-up link', async () => {
    const [, opened] = await journey.usher.waitForLine(/Open (\S+) in your browser/);
    assert.equal(opened.replace(/\/$/, ''), journey.usher.baseUrl, 'the "Open … in your browser" line names the base URL');
    const link = await printedSetupLink(journey.usher);
    assert.match(link, new RegExp(`^${escapeRegExp(journey.usher.baseUrl)}/setup/[A-Za-z0-9_-]{43}$`), 'the set-up link is <base url>/setup/<43-char token>');
    setupLink = link;
  });

  step('the start page offers "Sign in" and is accessible', async () => {
    await page.goto('/');
    await assertSignInOffered(page, 'on the start page');
    await checkA11y(page, 'start-page');
  });

  step('the set-up link shows the set-up form', async () => {
    await page.goto(setupLink);
    await assertHeading(page, 'Set up your operator account');
    await checkA11y(page, 'setup-form');
  });

  step('submitting the set-up form empty shows an error summary', async () => {
    await navigateBy(
      page,
      () => page.getByRole('button', { name: 'Create account', exact: true }).click(),
      'Submitting the empty set-up form (blocked by HTML required attributes without novalidate?)',
    );
    const summary = page.locator('.govuk-error-summary');
    try {
      await summary.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
    } catch {
      assert.fail(`expected a .govuk-error-summary after submitting the empty form.\n${await describePage(page)}`);
    }
    const text = await summary.innerText();
    assert.match(text, /Enter your full name/, `the error summary should say "Enter your full name"; it says: ${text}`);
    await checkA11y(page, 'setup-form-errors');
  });

  step('filling in the set-up form creates the account and asks for a second factor', async () => {
    await submitSetupForm(page, OPERATOR);
    await checkA11y(page, 'set-up-second-factor');
    // Until a second factor is set up, every other page leads back to the set-up page.
    await page.goto('/home');
    await assertHeading(page, 'Set up a second factor');
    assertPath(page, '/set-up', 'opening /home before setting up a second factor');
  });

  step('the operator sets up codes sent by email and is signed out', async () => {
    await setUpEmailCodes(page, OPERATOR);
    await page.goto('/home');
    await assertHeading(page, 'Sign in');
  });

  step('the operator signs in with the password and an emailed code', async () => {
    await signInWithEmailCode(page, OPERATOR);
    await assertHeading(page, 'Operator home');
    const text = await pageText(page);
    assert.ok(text.includes(OPERATOR.name), `the operator home page should show "${OPERATOR.name}".\n${await describePage(page)}`);
    await checkA11y(page, 'operator-home');
  });

  step('a test-clock warning banner shows because the server runs with --test-clock', async () => {
    const banner = page.locator('.usher-test-clock-banner').first();
    assert.ok(
      await banner.isVisible(),
      `expected a visible .usher-test-clock-banner on a server started with --test-clock.\n${await describePage(page)}`,
    );
  });

  step(`the page footer shows the sender address ${SENDER_ADDRESS}`, async () => {
    const footer = page.locator('footer, [role="contentinfo"]').first();
    let text = '';
    try {
      text = await footer.innerText({ timeout: ACTION_TIMEOUT_MS });
    } catch {
      assert.fail(`the page has no footer.\n${await describePage(page)}`);
    }
    assert.ok(text.includes(SENDER_ADDRESS), `the footer should mention ${SENDER_ADDRESS}; it reads: ${text.trim()}`);
  });

  step('the set-up link cannot be used twice', async () => {
    await page.goto(setupLink);
    await assertHeading(page, 'This link has already been used');
    await checkA11y(page, 'setup-link-used');
  });

  step('"Sign out" signs the operator out', async () => {
    await page.goto('/home');
    await assertHeading(page, 'Operator home');
    await clickButton(page, 'Sign out');
    await assertHeading(page, 'You have signed out');
    await assertSignInOffered(page, 'after signing out');
    const res = await page.goto('/home');
    const text = await pageText(page);
    assert.ok(
      !text.includes(OPERATOR.name) || (res && res.status() >= 400),
      `after signing out, /home should not show the operator's name.\n${await describePage(page)}`,
    );
  });

  step('the operator signs in again with email, password and an emailed code', async () => {
    await page.goto('/sign-in');
    await assertHeading(page, 'Sign in');
    await checkA11y(page, 'sign-in');
    await submitSignIn(page, OPERATOR.email, OPERATOR.password);
    assertPath(page, '/sign-in/second-factor', 'after the password');
    await giveEmailedCode(page, OPERATOR.email, { a11y: null });
    await assertHeading(page, 'Operator home');
  });

  step('the session cookie is __Host-, HttpOnly, Secure, SameSite and Path=/', async () => {
    const cookies = await context.cookies(journey.usher.baseUrl);
    const names = cookies.map((c) => c.name);
    const session = cookies.find((c) => /session/i.test(c.name));
    assert.ok(session, `no session cookie after signing in; cookies: ${JSON.stringify(names)}`);
    const show = JSON.stringify(session);
    assert.ok(session.name.startsWith('__Host-'), `session cookie name should start with __Host-: ${show}`);
    assert.equal(session.httpOnly, true, `session cookie should be HttpOnly: ${show}`);
    assert.equal(session.secure, true, `session cookie should be Secure: ${show}`);
    assert.ok(['Lax', 'Strict'].includes(session.sameSite), `session cookie SameSite should be Lax or Strict: ${show}`);
    assert.equal(session.path, '/', `session cookie Path should be /: ${show}`);
  });

  step('the dev mailbox shows the "operator account is set up" email', async () => {
    await openMailbox(page);
    const text = await pageText(page);
    assert.match(
      text,
      /operator account is set up/i,
      `the dev mailbox should list an email whose subject contains "operator account is set up".\n${await describePage(page)}`,
    );
    await checkA11y(page, 'dev-mailbox');
  });

  step('signing in with an emailed code works with JavaScript turned off', async () => {
    const noJs = await journey.freshPage({ javaScriptEnabled: false });
    try {
      const p = noJs.page;
      await p.goto('/sign-in');
      await submitSignIn(p, OPERATOR.email, OPERATOR.password);
      await giveEmailedCode(p, OPERATOR.email, { a11y: checkA11yWithoutScripts, shot: 'no-js-' });
      await assertHeading(p, 'Operator home');
      assert.ok((await pageText(p)).includes(OPERATOR.name), `operator home (no JS) should show "${OPERATOR.name}".\n${await describePage(p)}`);
      await screenshot(p, 'no-js-operator-home');
      await clickButton(p, 'Sign out');
      await assertHeading(p, 'You have signed out');
      await assertSignInOffered(p, 'after signing out with JavaScript off');
    } catch (e) {
      await screenshot(noJs.page, 'FAILED-no-js').catch(() => {});
      throw e;
    } finally {
      await noJs.context.close();
    }
  });
});
