// System notifications, the phishing page, the audit trail and the account lifecycle, in a real
// browser, in two journeys, each on its own server:
//
// 1. The operator writes an urgent system notification to show from an hour ahead (on the
//    server's test clock). Before then a signed-out visitor sees it neither on /sign-in nor on
//    /notifications; an hour later (test clock) it shows as a banner on /sign-in, which "Hide this
//    message" hides in that browser only, while it stays on /notifications. The operator sees it
//    on his home page and ends it with "End"; a link to another site is refused; a warning shows
//    as a "Warning" banner. Every page's footer links to /notifications and to /phishing, which
//    names the one sender address and the service's address.
// 2. The operator registers an organisation whose administrator adds a user; both activate. The
//    operator views, filters (by action, by person, a wrong date) and downloads (CSV, JSON lines)
//    the audit trail; the administrator sees her organisation's only. Then, on the test clock
//    with the lifecycle jobs running every second (USHER_LIFECYCLE_RUN_EVERY=1s): reminders at
//    day 77 and day 88, the administrator signs in at day 80, and at day 90 the user (but not the
//    administrator) is deregistered. His right password shows "Your account has been
//    deregistered"; the administrator (whose password has expired) changes it, reregisters him,
//    and he signs in again, first changing his expired password.
//
// Every distinct page is checked with axe and screenshotted (artifacts/notices-*.png and
// artifacts/lifecycle-*.png).
//
// Run: USHER_BIN=target/debug/usher node --test tests/browser/lifecycle_notices.test.js

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
  checkA11y,
  checkA11yWithoutScripts,
  click,
  clickButton,
  clickLink,
  clockNow,
  describePage,
  escapeRegExp,
  fill,
  firstSignInWithEmailCodes,
  normalise,
  pageText,
  printedSetupLink,
  screenshot,
  setUpEmailCodes,
  signInWithEmailCode,
  signOut,
  submitSetupForm,
  submitSignIn,
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
  newPassword: 'Adm1n-Later-Battery-2',
};
const USER = {
  name: 'Brian Barrister',
  email: 'brian@smithjones.example',
  mobile: '07700 900123',
  e164: '+447700900123',
  password: 'Us3r-Correct-Staple',
  newPassword: 'Us3r-Renewed-Staple-2',
};
const WRONG_PASSWORD = 'Wr0ng-Horse-Guess';
const WRONG_SIGN_IN = 'Enter a correct email address and password';

const REMINDER_SUBJECT = 'Sign in to keep your Usher account';
const DEREGISTERED_SUBJECT = 'Your Usher account has been deregistered';
const REREGISTERED_SUBJECT = 'Your Usher account has been reregistered';

const CSV_HEADER = 'seq,at,actor_id,subject_id,organisation_id,action,outcome,ip,user_agent,request_id,detail,hash';

// ----- helpers shared by both journeys ---------------------------------------------------------

/** `unix` seconds as the notification form takes it: UTC "YYYY-MM-DD HH:MM" (seconds dropped). */
const utcMinute = (unix) => new Date(unix * 1000).toISOString().slice(0, 16).replace('T', ' ');

/** The system-notification banners on the page ("Urgent: system notification" and the like). */
const noticeBanners = (p) => p.getByRole('region', { name: /: system notification$/ });

/** Asserts the page shows no system-notification banner. */
async function assertNoNoticeBanner(p, what) {
  const n = await noticeBanners(p).count();
  if (n > 0) {
    const names = await noticeBanners(p).allInnerTexts();
    assert.fail(`${what}: expected no system-notification banner, found ${n}: ${JSON.stringify(names.map(normalise))}.\n${await describePage(p)}`);
  }
}

/** Asserts the footer links "System notifications" to /notifications and "Recognising phishing emails" to /phishing. */
async function assertFooterLinks(p, what) {
  const footer = p.locator('footer');
  for (const [name, href] of [['System notifications', '/notifications'], ['Recognising phishing emails', '/phishing']]) {
    const link = footer.getByRole('link', { name, exact: true });
    await visible(link, `a footer link "${name}" ${what}`, p);
    assert.equal(await link.getAttribute('href'), href, `${what}: the footer link "${name}" should go to ${href}`);
  }
}

/** The value of the summary-list row whose key is `key`. */
async function summaryValue(p, key) {
  const row = p.locator('.govuk-summary-list__row').filter({ has: p.locator('dt', { hasText: new RegExp(`^\\s*${escapeRegExp(key)}\\s*$`) }) });
  await visible(row.first(), `a summary row "${key}"`, p);
  return normalise(await row.first().locator('dd').first().innerText());
}

/** Asserts the page's <title> starts "Error: " (a page with form errors). */
async function assertErrorTitle(p, what) {
  const title = await p.title();
  assert.ok(title.startsWith('Error: '), `${what}: a page with errors should have a title starting "Error: "; it is "${title}"`);
}

/** A predicate for dev-mailbox messages (as readMailbox gives them) to `to` with `subject`. */
function mailTo(to, subject) {
  return (m) => m.to === to && m.title === subject;
}

// ----- a small CSV reader (RFC 4180: quoted fields, doubled quotes, CRLF or LF) ----------------

function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

// =================================================================================================
// 1. System notifications and the phishing page
// =================================================================================================

describe('system notifications and the phishing page', { timeout: 20 * 60_000 }, () => {
  const SHOT = 'notices';
  const journey = useJourney({ shotPrefix: `${SHOT}-` });
  const { step, freshPage } = journey;
  const a11y = (p, name) => checkA11y(p, `${SHOT}-${name}`);

  const URGENT = {
    title: 'Sign-in service upgrade tonight',
    first: 'We are upgrading the sign-in service tonight, so signing in may be slow for a few minutes.',
    second: 'Progress is posted at', // followed by a link to <base>/notifications
  };
  const WARNING = {
    title: 'Scheduled maintenance on Saturday',
    body: 'The service may be unavailable for up to an hour on Saturday morning.',
  };
  const REFUSED_URL = 'https://usher-support.example.net/reset';

  let operatorPage;
  let visitorPage; // a signed-out visitor's browser
  let sender; // the one sender address, from the operator home
  let showFrom; // the urgent notification's "Show from", UTC minute

  /** The operator table's row for the notification titled `title`. */
  const tableRow = (p, title) =>
    p.locator('main table tbody tr').filter({ has: p.getByRole('cell', { name: title, exact: true }) });

  /** Asserts the operator table's row for `title` has `importance` and the status `status`; returns the row. */
  async function assertTableRow(p, title, importance, status) {
    const row = tableRow(p, title);
    await visible(row.first(), `a row for "${title}" in the table of notifications`, p);
    assert.equal(await row.count(), 1, `one row for "${title}".\n${await describePage(p)}`);
    const cells = (await row.locator('td').allInnerTexts()).map(normalise);
    assert.ok(cells.includes(importance), `the row for "${title}" should show the importance "${importance}"; it reads ${JSON.stringify(cells)}`);
    assert.ok(cells.includes(status), `the row for "${title}" should show the status "${status}"; it reads ${JSON.stringify(cells)}`);
    return row.first();
  }

  /** The "End" button of the row for `title` (its accessible name includes the title). */
  const endButton = (p, title) => p.getByRole('button', { name: `End ${title}`, exact: true });

  /** Fills the date input `legend` ("Show from (optional)") with `text` ("YYYY-MM-DD HH:MM", or '' for none). */
  async function fillDateTime(p, legend, text) {
    const group = p.getByRole('group', { name: legend, exact: true });
    await visible(group, `a date input "${legend}"`, p);
    const [date = '', time = ''] = text ? text.split(' ') : [];
    const [year = '', month = '', day = ''] = date ? date.split('-') : [];
    for (const [label, value] of [['Day', day], ['Month', month], ['Year', year], ['Time', time]]) {
      await group.getByLabel(label, { exact: true }).fill(value);
    }
  }

  /** From the operator's table: "Write a notification", fill the form and "Publish notification". */
  async function writeNotification(p, { title, body, importance, from = '' }) {
    await p.goto('/operator/notifications');
    await assertHeading(p, 'System notifications');
    await clickLink(p, 'Write a notification');
    await assertHeading(p, 'Write a system notification');
    await fill(p, 'Title', title);
    await fill(p, 'Notification', body);
    await p.getByRole('group', { name: 'How important is it?' }).getByRole('radio', { name: importance, exact: true }).check();
    await fillDateTime(p, 'Show from (optional)', from);
    await clickButton(p, 'Publish notification');
  }

  // ----- the operator --------------------------------------------------------------------------

  step('the operator signs in; every page footer links to the notifications and phishing pages', async () => {
    ({ page: operatorPage } = await freshPage());
    journey.current = operatorPage;
    const p = operatorPage;
    await p.goto(await printedSetupLink(journey.usher));
    await submitSetupForm(p, OPERATOR);
    await setUpEmailCodes(p, OPERATOR, { a11y: null });
    await signInWithEmailCode(p, OPERATOR, { a11y: null });
    await assertHeading(p, 'Operator home');
    await assertFooterLinks(p, 'on the operator home');
    sender = await summaryValue(p, 'Emails come from');
    assert.match(sender, /^\S+@\S+$/, `the operator home should name the sender address; it says "${sender}"`);
    await a11y(p, 'operator-home');
  });

  step('"System notifications" on the operator home opens the (empty) table of notifications', async () => {
    const p = operatorPage;
    await click(p, p.locator('main').getByRole('link', { name: 'System notifications', exact: true }), 'the "System notifications" link on the operator home');
    await assertHeading(p, 'System notifications');
    assertPath(p, '/operator/notifications', 'after "System notifications"');
    await assertTextIncludes(p, 'No notifications yet', 'the table of notifications starts empty');
    await visible(p.getByRole('button', { name: 'Write a notification', exact: true }), 'a "Write a notification" button-link', p);
    await assertFooterLinks(p, 'on the operator\'s notifications page');
    await a11y(p, 'operator-notifications-empty');
  });

  step('"Write a notification" opens the form with its fields', async () => {
    const p = operatorPage;
    await clickLink(p, 'Write a notification');
    await assertHeading(p, 'Write a system notification');
    assertPath(p, '/operator/notifications/new', 'after "Write a notification"');
    for (const label of ['Title', 'Notification']) {
      await visible(p.getByLabel(label, { exact: true }), `a field labelled "${label}"`, p);
    }
    // The times are GOV.UK date inputs: day, month, year and a time, grouped under a legend.
    for (const legend of ['Show from (optional)', 'Show until (optional)']) {
      const group = p.getByRole('group', { name: legend, exact: true });
      await visible(group, `a date input "${legend}"`, p);
      for (const part of ['Day', 'Month', 'Year', 'Time']) {
        await visible(group.getByLabel(part, { exact: true }), `a "${part}" field in "${legend}"`, p);
      }
    }
    assert.equal(await p.locator('textarea#body').count(), 1, 'the notification itself is a textarea with id "body"');
    const importance = p.getByRole('group', { name: 'How important is it?' });
    for (const choice of ['Information', 'Warning', 'Urgent']) {
      await visible(importance.getByRole('radio', { name: choice, exact: true }), `a radio "${choice}" under "How important is it?"`, p);
    }
    const audience = p.getByRole('group', { name: 'Who is it for?' }).getByRole('checkbox');
    assert.ok((await audience.count()) > 0, `"Who is it for?" should offer a checkbox per kind of organisation.\n${await describePage(p)}`);
    for (const box of await audience.all()) {
      assert.equal(await box.isChecked(), false, 'no kind of organisation should be ticked at first (none ticked is everyone)');
    }
    await visible(p.getByRole('button', { name: 'Publish notification', exact: true }), 'a "Publish notification" button', p);
    await a11y(p, 'operator-new-notification');
  });

  step('an urgent notification set to show an hour ahead (server clock) is saved but not showing yet', async () => {
    const p = operatorPage;
    const { unix } = await clockNow(journey.usher.baseUrl);
    showFrom = utcMinute(unix + 3600);
    await fill(p, 'Title', URGENT.title);
    await fill(p, 'Notification', `${URGENT.first}\n\n${URGENT.second} ${journey.usher.baseUrl}/notifications.`);
    await p.getByRole('group', { name: 'How important is it?' }).getByRole('radio', { name: 'Urgent', exact: true }).check();
    await fillDateTime(p, 'Show from (optional)', showFrom);
    await clickButton(p, 'Publish notification');
    await assertNoErrorSummary(p, 'after publishing a valid notification');
    await assertHeading(p, 'System notifications');
    assertPath(p, '/operator/notifications', 'after "Publish notification"');
    await assertSuccessBanner(p, 'after publishing', 'Notification saved');
    const row = await assertTableRow(p, URGENT.title, 'Urgent', 'Not showing');
    assert.equal(await row.getByRole('button').count(), 0, `a notification not yet showing has no "End" button.\n${await describePage(p)}`);
    await a11y(p, 'operator-notifications-scheduled');
  });

  // ----- a signed-out visitor ------------------------------------------------------------------

  step('before its start a signed-out visitor sees it neither on /sign-in nor on /notifications', async () => {
    ({ page: visitorPage } = await freshPage());
    journey.current = visitorPage;
    const p = visitorPage;
    await p.goto('/sign-in');
    await assertHeading(p, 'Sign in');
    await assertNoNoticeBanner(p, `/sign-in before ${showFrom}`);
    await assertFooterLinks(p, 'on /sign-in');
    await a11y(p, 'sign-in');
    await click(p, p.locator('footer').getByRole('link', { name: 'System notifications', exact: true }), 'the footer link "System notifications"');
    await assertHeading(p, 'System notifications');
    assertPath(p, '/notifications', 'after the footer link "System notifications"');
    const text = await assertTextIncludes(p, 'There are no system notifications at the moment', '/notifications before the start');
    assert.ok(!text.includes(URGENT.title), `/notifications should not list "${URGENT.title}" before ${showFrom}.\n${await describePage(p)}`);
    await assertFooterLinks(p, 'on /notifications');
    await a11y(p, 'notifications-empty');
  });

  step('an hour later (test clock) the urgent banner shows on /sign-in for the signed-out visitor', async () => {
    await advanceClock(journey.usher.baseUrl, '1h');
    const p = visitorPage;
    await p.goto('/sign-in');
    await assertHeading(p, 'Sign in');
    const banner = noticeBanners(p);
    await visible(banner.first(), 'a banner "Urgent: system notification" on /sign-in once the notification has started', p);
    assert.equal(await banner.count(), 1, `one notification banner on /sign-in.\n${await describePage(p)}`);
    const urgent = p.getByRole('region', { name: 'Urgent: system notification', exact: true });
    await visible(urgent, 'the banner named "Urgent: system notification"', p);
    const text = normalise(await urgent.innerText());
    assert.ok(text.includes(URGENT.title), `the banner should give the title "${URGENT.title}"; it reads: ${text}`);
    assert.ok(text.includes(URGENT.first), `the banner should give the first paragraph; it reads: ${text}`);
    const paragraphs = (await urgent.locator('p.govuk-body').allInnerTexts()).map(normalise);
    assert.ok(paragraphs.length >= 2, `the notification's two paragraphs should be two <p>; found ${JSON.stringify(paragraphs)}`);
    const link = urgent.getByRole('link', { name: `${journey.usher.baseUrl}/notifications`, exact: true });
    await visible(link, `a link to ${journey.usher.baseUrl}/notifications in the banner`, p);
    assert.equal(await link.getAttribute('href'), `${journey.usher.baseUrl}/notifications`, 'the link in the notification goes to the service\'s own page');
    await visible(urgent.getByRole('button', { name: 'Hide this message', exact: true }), 'a "Hide this message" button in the banner', p);
    await a11y(p, 'sign-in-urgent-banner');
  });

  step('"Hide this message" hides the banner in this browser only; the notification stays on /notifications', async () => {
    const p = visitorPage;
    const urgent = p.getByRole('region', { name: 'Urgent: system notification', exact: true });
    await click(p, urgent.getByRole('button', { name: 'Hide this message', exact: true }), 'the "Hide this message" button');
    await assertHeading(p, 'Sign in');
    assertPath(p, '/sign-in', 'after "Hide this message"');
    await assertNoNoticeBanner(p, 'after "Hide this message"');
    await a11y(p, 'sign-in-banner-hidden');
    await p.reload();
    await assertHeading(p, 'Sign in');
    await assertNoNoticeBanner(p, 'on /sign-in loaded again after hiding the banner');

    await p.goto('/notifications');
    await assertHeading(p, 'System notifications');
    const card = p.locator('main .govuk-summary-card').filter({ hasText: URGENT.title });
    await visible(card.first(), `a notification "${URGENT.title}" on /notifications after hiding its banner`, p);
    const cardText = normalise(await card.first().innerText());
    assert.ok(cardText.includes('Urgent'), `the notification on /notifications should be tagged "Urgent"; it reads: ${cardText}`);
    assert.ok(cardText.includes(URGENT.first), `the notification on /notifications should give its text; it reads: ${cardText}`);
    await visible(card.first().getByRole('link', { name: `${journey.usher.baseUrl}/notifications`, exact: true }), 'the link in the notification', p);
    await a11y(p, 'notifications-urgent');

    // Another browser has not hidden it.
    const { page: other } = await freshPage();
    await other.goto('/sign-in');
    await visible(
      other.getByRole('region', { name: 'Urgent: system notification', exact: true }),
      'the urgent banner in another browser, which has not hidden it',
      other,
    );
    await other.context().close();
  });

  // ----- the operator again --------------------------------------------------------------------

  step('the operator signs in again (the session idled out) and sees the banner on his home page and "End" in the table', async () => {
    const p = operatorPage;
    journey.current = p;
    await signInWithEmailCode(p, OPERATOR, { a11y: null });
    await assertHeading(p, 'Operator home');
    await visible(p.getByRole('region', { name: 'Urgent: system notification', exact: true }), 'the urgent banner on the operator home', p);
    await a11y(p, 'operator-home-urgent-banner');
    await p.goto('/operator/notifications');
    await assertHeading(p, 'System notifications');
    await assertTableRow(p, URGENT.title, 'Urgent', 'Published');
    await visible(endButton(p, URGENT.title), `an "End" button (named "End ${URGENT.title}") for the notification showing`, p);
    await a11y(p, 'operator-notifications-showing');
  });

  step('a notification linking to another site is refused with an error summary', async () => {
    const p = operatorPage;
    const body = `Reset your password at ${REFUSED_URL} today.`;
    await writeNotification(p, { title: 'Password reset needed', body, importance: 'Warning' });
    await assertHeading(p, 'Write a system notification');
    const summary = await assertErrorSummary(
      p,
      new RegExp(`Links may only go to ${escapeRegExp(journey.usher.baseUrl)}`),
      `after a notification linking to ${REFUSED_URL}`,
    );
    assert.ok(summary.includes(REFUSED_URL), `the error should name the refused link ${REFUSED_URL}; it says: ${summary}`);
    await assertErrorTitle(p, 'after the refused link');
    const inline = await visible(p.locator('#body-error'), 'an error message by the notification field (#body-error)', p);
    assert.match(normalise(await inline.innerText()), /Links may only go to/, 'the field\'s own error message');
    assert.equal(await p.getByLabel('Title', { exact: true }).inputValue(), 'Password reset needed', 'the title is kept after the error');
    assert.equal(await p.getByLabel('Notification', { exact: true }).inputValue(), body, 'the text is kept after the error');
    await a11y(p, 'operator-new-notification-refused-link');
    await p.goto('/operator/notifications');
    assert.equal(await tableRow(p, 'Password reset needed').count(), 0, `the refused notification should not be saved.\n${await describePage(p)}`);
  });

  step('"End" ends the urgent notification at once: gone from /notifications and from the banner', async () => {
    const p = operatorPage;
    await p.goto('/operator/notifications');
    await click(p, endButton(p, URGENT.title), `the "End" button for "${URGENT.title}"`);
    await assertHeading(p, 'System notifications');
    await assertSuccessBanner(p, 'after "End"', 'Notification ended');
    const row = await assertTableRow(p, URGENT.title, 'Urgent', 'Not showing');
    assert.equal(await row.getByRole('button').count(), 0, `an ended notification has no "End" button.\n${await describePage(p)}`);
    await a11y(p, 'operator-notifications-ended');

    const { page: other } = await freshPage();
    journey.current = other;
    await other.goto('/sign-in');
    await assertHeading(other, 'Sign in');
    await assertNoNoticeBanner(other, 'on /sign-in after the notification was ended');
    await other.goto('/notifications');
    const text = await pageText(other);
    assert.ok(!text.includes(URGENT.title), `/notifications should no longer list "${URGENT.title}" once ended.\n${await describePage(other)}`);
    await other.context().close();
  });

  step('a warning shows as a "Warning: system notification" banner, even where the urgent one was hidden', async () => {
    const p = operatorPage;
    journey.current = p;
    await writeNotification(p, { title: WARNING.title, body: WARNING.body, importance: 'Warning' });
    await assertNoErrorSummary(p, 'after publishing the warning');
    await assertHeading(p, 'System notifications');
    await assertTableRow(p, WARNING.title, 'Warning', 'Published');

    const v = visitorPage;
    journey.current = v;
    await v.goto('/sign-in');
    const warning = v.getByRole('region', { name: 'Warning: system notification', exact: true });
    await visible(warning, 'a banner "Warning: system notification" on /sign-in', v);
    const text = normalise(await warning.innerText());
    assert.ok(text.includes(WARNING.title) && text.includes(WARNING.body), `the warning banner should give its title and text; it reads: ${text}`);
    await a11y(v, 'sign-in-warning-banner');

    // Without JavaScript "Hide this message" is a plain form post and works the same.
    const noJs = await freshPage({ javaScriptEnabled: false });
    const q = noJs.page;
    journey.current = q;
    await q.goto('/sign-in');
    const banner = q.getByRole('region', { name: 'Warning: system notification', exact: true });
    await visible(banner, 'the warning banner on /sign-in with JavaScript off', q);
    await checkA11yWithoutScripts(q, `${SHOT}-sign-in-warning-banner-no-js`);
    await click(q, banner.getByRole('button', { name: 'Hide this message', exact: true }), 'the "Hide this message" button with JavaScript off');
    await assertHeading(q, 'Sign in');
    await assertNoNoticeBanner(q, 'after "Hide this message" with JavaScript off');
    await q.goto('/notifications');
    await visible(q.locator('main .govuk-summary-card').filter({ hasText: WARNING.title }).first(), 'the warning on /notifications after hiding it, JavaScript off', q);
    await noJs.context.close();
  });

  // ----- the phishing page ---------------------------------------------------------------------

  step('"Recognising phishing emails" in the footer names the one sender address and the service address', async () => {
    const p = visitorPage;
    journey.current = p;
    const footerText = normalise(await p.locator('footer').innerText());
    assert.ok(footerText.includes(sender), `the footer should name the sender ${sender}; it reads: ${footerText}`);
    await click(p, p.locator('footer').getByRole('link', { name: 'Recognising phishing emails', exact: true }), 'the footer link "Recognising phishing emails"');
    await assertHeading(p, 'Recognising phishing emails');
    assertPath(p, '/phishing', 'after the footer link "Recognising phishing emails"');
    const main = normalise(await p.locator('main').innerText());
    assert.ok(main.includes(sender), `the phishing page should name the sender address ${sender}.\n${await describePage(p)}`);
    assert.ok(main.includes(journey.usher.baseUrl), `the phishing page should name the service address ${journey.usher.baseUrl}.\n${await describePage(p)}`);
    await assertFooterLinks(p, 'on /phishing');
    await a11y(p, 'phishing');
  });
});

// =================================================================================================
// 2. The audit trail and the account lifecycle
// =================================================================================================

describe('audit trail and account lifecycle', { timeout: 30 * 60_000 }, () => {
  const SHOT = 'lifecycle';
  const journey = useJourney({ shotPrefix: `${SHOT}-`, server: { extraEnv: { USHER_LIFECYCLE_RUN_EVERY: '1s' } } });
  const { step, freshPage } = journey;
  const a11y = (p, name) => checkA11y(p, `${SHOT}-${name}`);

  let operatorPage;
  let adaPage;
  let brianPage;
  let mailbox; // a cookie-less browser reading the dev mailbox
  let organisationId;
  let brianUrl;
  let day = 0; // days the test clock has moved since everyone activated

  /** Moves the test clock on `n` days. */
  async function advanceDays(n) {
    await advanceClock(journey.usher.baseUrl, `${n}d`);
    day += n;
  }

  /** Every message to `to` with `subject` in the dev mailbox, read on the mailbox browser. */
  async function messagesTo(to, subject) {
    await mailbox.goto('/dev/mailbox');
    await assertHeading(mailbox, 'Dev mailbox');
    const all = await mailbox.locator('.govuk-summary-card').evaluateAll((cards) =>
      cards.map((card) => {
        const title = (card.querySelector('.govuk-summary-card__title')?.textContent ?? '').replace(/\s+/g, ' ').trim();
        let recipient = '';
        for (const row of card.querySelectorAll('.govuk-summary-list__row')) {
          if ((row.querySelector('dt')?.textContent ?? '').trim() === 'To') recipient = (row.querySelector('dd')?.textContent ?? '').trim();
        }
        return { title, to: recipient, body: card.querySelector('pre.usher-message-body')?.textContent ?? '' };
      }),
    );
    return all.filter(mailTo(to, subject));
  }

  /** Waits until the dev mailbox holds at least `count` messages to `to` with `subject`; returns the newest. */
  async function waitForCount(to, subject, count, a11yName = null) {
    const message = await waitForMessage(
      mailbox,
      (m, _i, all) => mailTo(to, subject)(m) && all.filter(mailTo(to, subject)).length >= count,
      `${count} "${subject}" email(s) to ${to} (day ${day} on the test clock; the lifecycle jobs run every second)`,
      a11yName && `${SHOT}-${a11yName}`,
      a11yName ? checkA11y : async () => {},
    );
    return message;
  }

  /** The audit table's rows as { action, by, about, cells }. */
  async function auditRows(p) {
    const region = p.getByRole('region', { name: 'Audit events', exact: true });
    if ((await region.count()) === 0) return [];
    const headers = (await region.locator('thead th').allInnerTexts()).map(normalise);
    const col = (name) => headers.indexOf(name);
    return region.locator('tbody tr').evaluateAll(
      (rows, idx) =>
        rows.map((r) => {
          const cells = [...r.querySelectorAll('td')].map((c) => c.textContent.replace(/\s+/g, ' ').trim());
          // The words, with the raw action name under them.
          const what = r.querySelectorAll('td')[idx.action];
          const code = what?.querySelector('.usher-action-code')?.textContent.trim() ?? '';
          const words = (what?.textContent ?? '').replace(code, '').replace(/\s+/g, ' ').trim();
          return { action: code, words, by: cells[idx.by], about: cells[idx.about], cells };
        }),
      { action: col('What happened'), by: col('By'), about: col('About') },
    );
  }

  /** Asserts the audit table sits in a keyboard-scrollable region and returns its rows. */
  async function assertAuditTable(p, what) {
    const region = p.getByRole('region', { name: 'Audit events', exact: true });
    await visible(region, `a region "Audit events" holding the table ${what}`, p);
    assert.equal(await region.getAttribute('tabindex'), '0', `${what}: the scrollable table region should be focusable (tabindex="0")`);
    assert.equal(await region.locator('table').count(), 1, `${what}: the region should hold the audit table`);
    const rows = await auditRows(p);
    assert.ok(rows.length > 0, `${what}: the audit table should list events.\n${await describePage(p)}`);
    return rows;
  }

  /** Fills the audit filter form and presses "Filter events". */
  async function filterAudit(p, { organisation, user = '', action = '', from = '', to = '' }) {
    if (organisation !== undefined) await p.getByLabel('Organisation', { exact: true }).selectOption(organisation);
    await fill(p, 'Person (email address or ID)', user);
    await p.getByLabel('Action', { exact: true }).selectOption(action);
    await fill(p, 'From (day)', from);
    await fill(p, 'To (day, included)', to);
    await clickButton(p, 'Filter events');
  }

  /** The download link `name` ("CSV" or "JSON lines") of the audit page, fetched with the page's cookies. */
  async function download(p, name) {
    const link = p.getByRole('link', { name, exact: true });
    await visible(link, `a "${name}" download link on the audit page`, p);
    const href = await link.getAttribute('href');
    const res = await p.request.get(href);
    const body = await res.text();
    assert.equal(res.status(), 200, `the "${name}" link (${href}) should answer 200; it answered ${res.status()}: ${body.slice(0, 300)}`);
    return { href, res, body, headers: res.headers() };
  }

  // ----- setting up: an operator, an organisation, its administrator and a user -----------------

  step('the operator sets up an account, registers an organisation and invites its administrator', async () => {
    ({ page: operatorPage } = await freshPage());
    journey.current = operatorPage;
    const p = operatorPage;
    await p.goto(await printedSetupLink(journey.usher));
    await submitSetupForm(p, OPERATOR);
    await setUpEmailCodes(p, OPERATOR, { a11y: null });
    await signInWithEmailCode(p, OPERATOR, { a11y: null });
    await assertHeading(p, 'Operator home');
    await p.goto('/operator/organisations/new');
    await assertHeading(p, 'Register an organisation');
    await fill(p, 'Organisation name', ORGANISATION.name);
    await p.getByRole('radio', { name: ORGANISATION.kind, exact: true }).check();
    await clickButton(p, 'Register organisation');
    await assertHeading(p, ORGANISATION.name);
    organisationId = new URL(p.url()).pathname.split('/').pop();
    assert.ok(organisationId && organisationId !== 'new', `the organisation page's address should end in its ID; it is ${p.url()}`);
    await clickLink(p, 'Invite an administrator');
    await fill(p, 'Full name', ADMIN.name);
    await fill(p, 'Email address', ADMIN.email);
    await fill(p, 'Mobile phone number', ADMIN.mobile);
    await clickButton(p, 'Send invitation');
    await assertHeading(p, ORGANISATION.name);
  });

  step(`${ADMIN.name} activates her account, signs in and adds ${USER.name}`, async () => {
    ({ page: adaPage } = await freshPage());
    journey.current = adaPage;
    const p = adaPage;
    await activateAccount(p, ADMIN, journey.usher.baseUrl);
    await firstSignInWithEmailCodes(p, ADMIN, { a11y: null });
    await assertHeading(p, 'Administrator home');
    await p.goto('/admin/users/new');
    await assertHeading(p, 'Add a user');
    await fill(p, 'Full name', USER.name);
    await fill(p, 'Email address', USER.email);
    await fill(p, 'Mobile phone number', USER.mobile);
    await clickButton(p, 'Add user');
    await assertHeading(p, USER.name);
    brianUrl = p.url();
    assert.match(new URL(brianUrl).pathname, /^\/admin\/users\/[^/]+$/, `the new user's page should be /admin/users/<id>; it is ${brianUrl}`);
  });

  step(`${USER.name} activates his account and signs in with emailed codes`, async () => {
    ({ page: brianPage } = await freshPage());
    journey.current = brianPage;
    const p = brianPage;
    await activateAccount(p, USER, journey.usher.baseUrl);
    await firstSignInWithEmailCodes(p, USER, { a11y: null });
    await assertHeading(p, 'Your account');
    await signOut(p, 'user-signed-out', async () => {});
    ({ page: mailbox } = await freshPage());
  });

  // ----- the audit trail ---------------------------------------------------------------------------

  step('"Audit trail" on the operator home lists every event, newest first, in a scrollable region', async () => {
    const p = operatorPage;
    journey.current = p;
    await p.goto('/home');
    await assertHeading(p, 'Operator home');
    await clickLink(p, 'Audit trail');
    await assertHeading(p, 'Audit trail');
    assertPath(p, '/operator/audit', 'after "Audit trail"');
    for (const label of ['Organisation', 'Person (email address or ID)', 'Action', 'From (day)', 'To (day, included)']) {
      await visible(p.getByLabel(label, { exact: true }), `a filter field labelled "${label}"`, p);
    }
    await visible(p.getByRole('button', { name: 'Filter events', exact: true }), 'a "Filter events" button', p);
    const rows = await assertAuditTable(p, 'on the operator\'s audit trail');
    const actions = rows.map((r) => r.action);
    for (const a of ['organisation.registered', 'administrator.invited', 'user.added', 'activation.completed']) {
      assert.ok(actions.includes(a) || rows.length === 50, `the audit trail should list "${a}"; it lists ${JSON.stringify(actions)}`);
    }
    // Newest first: the user's activation comes before (above) the administrator's, and both
    // before the organisation was registered.
    const brianActivated = rows.findIndex((r) => r.action === 'activation.completed' && `${r.by} ${r.about}`.includes(USER.name));
    const adaActivated = rows.findIndex((r) => r.action === 'activation.completed' && `${r.by} ${r.about}`.includes(ADMIN.name));
    assert.ok(brianActivated >= 0, `the trail should list ${USER.name}'s activation.completed: ${JSON.stringify(rows.map((r) => [r.action, r.by, r.about]))}`);
    if (adaActivated >= 0) {
      assert.ok(brianActivated < adaActivated, `newest first: ${USER.name}'s activation (row ${brianActivated}) should come above ${ADMIN.name}'s (row ${adaActivated})`);
    }
    await visible(p.getByRole('link', { name: 'CSV', exact: true }), 'a "CSV" download link', p);
    await visible(p.getByRole('link', { name: 'JSON lines', exact: true }), 'a "JSON lines" download link', p);
    const older = p.getByRole('link', { name: 'Older events', exact: true });
    if (rows.length === 50) {
      await visible(older, 'an "Older events" link under a full page of 50 events', p);
    } else {
      assert.ok(rows.length < 50, `one page lists at most 50 events; this one lists ${rows.length}`);
      assert.equal(await older.count(), 0, `with ${rows.length} events there should be no "Older events" link`);
    }
    // Actions in words, the raw name kept under them.
    const secondFactor = rows.find((r) => r.action === 'sign_in.second_factor');
    assert.ok(secondFactor, `the trail should list the operator's sign-in with a second factor: ${JSON.stringify(actions)}`);
    assert.equal(secondFactor.words, 'Signed in with a code sent by email', `sign_in.second_factor should read in words: ${JSON.stringify(secondFactor)}`);
    await a11y(p, 'operator-audit');
    // At 1280 px wide the table fits: neither the page nor the table's region scrolls sideways.
    const viewport = p.viewportSize();
    await p.setViewportSize({ width: 1280, height: 900 });
    const fit = await p.evaluate(() => {
      const region = document.querySelector('[role="region"][aria-label="Audit events"]');
      return {
        page: document.documentElement.scrollWidth,
        view: document.documentElement.clientWidth,
        table: region.scrollWidth,
        region: region.clientWidth,
      };
    });
    await screenshot(p, `${SHOT}-operator-audit-1280`);
    if (viewport) await p.setViewportSize(viewport);
    assert.ok(fit.page <= fit.view, `at 1280 px the audit page should not scroll sideways: ${JSON.stringify(fit)}`);
    assert.ok(fit.table <= fit.region, `at 1280 px the audit table should fit its region: ${JSON.stringify(fit)}`);
    if (rows.length === 50) {
      await click(p, older, 'the "Older events" link');
      await assertHeading(p, 'Audit trail');
      await assertAuditTable(p, 'on the older events');
      await a11y(p, 'operator-audit-older');
    }
  });

  step('filtering by the action "activation" lists only activation events, newest first', async () => {
    const p = operatorPage;
    await p.goto('/operator/audit');
    await filterAudit(p, { organisation: '', action: 'activation' });
    await assertHeading(p, 'Audit trail');
    await assertNoErrorSummary(p, 'after filtering by "activation"');
    assert.equal(new URL(p.url()).searchParams.get('action'), 'activation', `the filter should be in the address (a GET form): ${p.url()}`);
    const rows = await assertAuditTable(p, 'filtered by "activation"');
    const strays = rows.filter((r) => !/^activation(\.|$)/.test(r.action));
    assert.deepEqual(strays.map((r) => r.action), [], 'filtering by "activation" should list only activation and activation.* events');
    assert.equal(rows[0].action, 'activation.completed', `newest first: the last activation event was ${USER.name}'s activation.completed; the first row is ${JSON.stringify(rows[0])}`);
    assert.ok(`${rows[0].by} ${rows[0].about}`.includes(USER.name), `the newest activation event should be about ${USER.name}: ${JSON.stringify(rows[0])}`);
    assert.equal(await p.getByLabel('Action', { exact: true }).inputValue(), 'activation', 'the form keeps the filter');
    await a11y(p, 'operator-audit-activation');
  });

  step(`filtering by a person's email address lists only events by or about ${USER.name}`, async () => {
    const p = operatorPage;
    await filterAudit(p, { organisation: '', user: USER.email });
    await assertHeading(p, 'Audit trail');
    await assertNoErrorSummary(p, `after filtering by ${USER.email}`);
    const rows = await assertAuditTable(p, `filtered by ${USER.email}`);
    const strays = rows.filter((r) => !`${r.by} ${r.about}`.includes(USER.name));
    assert.deepEqual(strays.map((r) => r.cells), [], `every event listed should be by or about ${USER.name}`);
    assert.ok(rows.some((r) => r.action === 'user.added'), `the events about ${USER.name} should include user.added: ${JSON.stringify(rows.map((r) => r.action))}`);
    await a11y(p, 'operator-audit-person');
  });

  step('a day that is not a date shows an error summary', async () => {
    const p = operatorPage;
    await p.goto('/operator/audit');
    await filterAudit(p, { organisation: '', from: '23/11/2026' });
    await assertHeading(p, 'Audit trail');
    await assertErrorSummary(p, /Enter a date like \d{4}-\d{2}-\d{2}/, 'after the day "23/11/2026"');
    await assertErrorTitle(p, 'after a wrong day');
    await visible(p.locator('#from-error'), 'an error message by the "From (day)" field', p);
    assert.equal(await p.getByLabel('From (day)', { exact: true }).inputValue(), '23/11/2026', 'the form keeps what was typed');
    const summaryLink = p.locator('.govuk-error-summary a');
    assert.equal(await summaryLink.first().getAttribute('href'), '#from', 'the error summary links to the "From (day)" field');
    await a11y(p, 'operator-audit-invalid-date');
  });

  step('"CSV" downloads the filtered events as text/csv and "JSON lines" as JSON lines; exports are audited', async () => {
    const p = operatorPage;
    await p.goto('/operator/audit?action=activation');
    await assertHeading(p, 'Audit trail');
    const shown = await assertAuditTable(p, 'filtered by "activation" before downloading');

    const csv = await download(p, 'CSV');
    assert.match(csv.headers['content-type'] ?? '', /^text\/csv\b/, `the CSV download should be text/csv; it is ${csv.headers['content-type']}`);
    assert.match(
      csv.headers['content-disposition'] ?? '',
      /^attachment;\s*filename="usher-audit-\d{4}-\d{2}-\d{2}\.csv"$/,
      `the CSV should download as an attachment usher-audit-<day>.csv; Content-Disposition: ${csv.headers['content-disposition']}`,
    );
    const table = parseCsv(csv.body);
    assert.equal(table[0].join(','), CSV_HEADER, 'the CSV header row');
    const records = table.slice(1).filter((r) => r.length > 1);
    assert.equal(records.length, shown.length, `the CSV should hold the ${shown.length} events the page shows`);
    const action = CSV_HEADER.split(',').indexOf('action');
    for (const r of records) {
      assert.equal(r.length, 12, `each CSV row has 12 columns: ${JSON.stringify(r)}`);
      assert.match(r[action], /^activation(\.|$)/, `the CSV of the "activation" filter should hold only activation events: ${JSON.stringify(r)}`);
    }
    const seqs = records.map((r) => Number(r[0]));
    assert.deepEqual(seqs, [...seqs].sort((x, y) => y - x), 'the CSV lists the events newest (highest seq) first');

    const jsonl = await download(p, 'JSON lines');
    assert.match(jsonl.headers['content-type'] ?? '', /^application\/x-ndjson\b/, `the JSON lines download's type; it is ${jsonl.headers['content-type']}`);
    const lines = jsonl.body.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, records.length, 'the JSON lines export holds the same events as the CSV');
    for (const l of lines) assert.match(JSON.parse(l).action, /^activation(\.|$)/, `each JSON line is an activation event: ${l}`);

    await p.goto('/operator/audit');
    const rows = await assertAuditTable(p, 'after downloading');
    assert.equal(rows[0].action, 'audit.exported', `the newest event should be the export just made: ${JSON.stringify(rows[0])}`);
  });

  step('with more than 50 events the page lists the newest 50 and "Older events" leads to the rest', async () => {
    const p = operatorPage;
    await p.goto('/operator/audit');
    await assertHeading(p, 'Audit trail');
    // Every export is itself an event ("audit.exported", appended after the events are read):
    // download until the trail holds more than 50 events.
    let total = 0;
    for (let i = 0; i < 60 && total <= 55; i += 1) {
      const { body } = await download(p, 'JSON lines');
      total = body.split('\n').filter((l) => l.trim() !== '').length + 1;
    }
    assert.ok(total > 50, `the trail should now hold more than 50 events; it holds ${total}`);
    await p.goto('/operator/audit');
    await assertHeading(p, 'Audit trail');
    const newest = await assertAuditTable(p, 'with more than 50 events');
    assert.equal(newest.length, 50, `the first page should list the newest 50 of ${total} events`);
    const older = p.getByRole('link', { name: 'Older events', exact: true });
    await visible(older, `an "Older events" link with ${total} events`, p);
    assert.match(await older.getAttribute('href'), /^\/operator\/audit\?.*\bbefore=\d+/, 'the "Older events" link pages on with before=<seq>');
    await a11y(p, 'operator-audit-full-page');
    await click(p, older, 'the "Older events" link');
    await assertHeading(p, 'Audit trail');
    const rest = await assertAuditTable(p, 'on the older events');
    assert.equal(newest.length + rest.length, total, `the two pages together should list all ${total} events`);
    assert.equal(rest[rest.length - 1].action, 'operator.setup_link_issued', 'the oldest event of all is the printed set-up link');
    assert.equal(await p.getByRole('link', { name: 'Older events', exact: true }).count(), 0, 'no "Older events" link on the last page');
    await a11y(p, 'operator-audit-older');
  });

  step(`${ADMIN.name}'s "Audit trail of ${ORGANISATION.name}" shows her organisation's events only`, async () => {
    const p = adaPage;
    journey.current = p;
    await p.goto('/home');
    await assertHeading(p, 'Administrator home');
    await clickLink(p, `Audit trail of ${ORGANISATION.name}`);
    await assertHeading(p, 'Audit trail');
    assertPath(p, '/admin/audit', `after "Audit trail of ${ORGANISATION.name}"`);
    assert.equal(await p.getByLabel('Organisation', { exact: true }).count(), 0, 'an administrator has no "Organisation" filter');
    assert.ok(!(await pageText(p)).includes('usher audit verify'), `an administrator is not told to run a server command.\n${await describePage(p)}`);
    const rows = await assertAuditTable(p, 'on the administrator\'s audit trail');
    const actions = rows.map((r) => r.action);
    for (const a of ['user.added', 'activation.completed']) {
      assert.ok(actions.includes(a), `her organisation's trail should list "${a}"; it lists ${JSON.stringify(actions)}`);
    }
    for (const a of ['operator.setup_link_issued', 'audit.exported', 'test_clock.moved']) {
      assert.ok(!actions.includes(a), `her organisation's trail should not list the operator's "${a}"; it lists ${JSON.stringify(actions)}`);
    }
    await a11y(p, 'admin-audit');
    const jsonl = await download(p, 'JSON lines');
    const events = jsonl.body.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
    assert.ok(events.length > 0, 'her export should hold events');
    const others = events.filter((e) => e.organisation_id !== organisationId);
    assert.deepEqual(others, [], `every event in her export should belong to ${ORGANISATION.name} (${organisationId})`);
  });

  // ----- the account lifecycle -----------------------------------------------------------------------

  step('77 days later (test clock) the lifecycle job emails a first reminder to both', async () => {
    journey.current = mailbox;
    await advanceDays(77);
    const reminder = await waitForCount(USER.email, REMINDER_SUBJECT, 1, 'dev-mailbox-reminder');
    assert.match(reminder.body, /Unless you sign in before/, `the reminder should say to sign in before a date; it reads:\n${reminder.body}`);
    assert.ok(reminder.body.includes(`${journey.usher.baseUrl}/sign-in`), `the reminder should link to the sign-in page; it reads:\n${reminder.body}`);
    await waitForCount(ADMIN.email, REMINDER_SUBJECT, 1);
  });

  step(`at day 80 ${ADMIN.name} signs in (her password has not expired yet)`, async () => {
    await advanceDays(3);
    const p = adaPage;
    journey.current = p;
    await signInWithEmailCode(p, ADMIN, { a11y: null });
    await assertHeading(p, 'Administrator home');
    assertPath(p, '/home', `${ADMIN.name} signing in at day 80`);
  });

  step(`at day 88 ${USER.name} gets the second reminder (3 days before)`, async () => {
    journey.current = mailbox;
    await advanceDays(8);
    await waitForCount(USER.email, REMINDER_SUBJECT, 2);
    const adaReminders = await messagesTo(ADMIN.email, REMINDER_SUBJECT);
    assert.equal(adaReminders.length, 1, `${ADMIN.name} signed in at day 80, so she gets no second reminder by day 88`);
  });

  step(`at day 90 ${USER.name}, unused for 90 days, is deregistered; ${ADMIN.name} is not`, async () => {
    await advanceDays(2);
    const mail = await waitForCount(USER.email, DEREGISTERED_SUBJECT, 1);
    assert.ok(
      mail.body.includes(`reregistered by ${ADMIN.name}, your organisation administrator`),
      `the deregistration email should say to ask ${ADMIN.name}; it reads:\n${mail.body}`,
    );
    const adaMails = await messagesTo(ADMIN.email, DEREGISTERED_SUBJECT);
    assert.equal(adaMails.length, 0, `${ADMIN.name} signed in at day 80, so she should not be deregistered at day 90`);
  });

  step('his right password leads to "Your account has been deregistered", naming whom to ask', async () => {
    const p = brianPage;
    journey.current = p;
    await p.goto('/sign-in');
    await submitSignIn(p, USER.email, WRONG_PASSWORD);
    await assertHeading(p, 'Sign in');
    await assertErrorSummary(p, new RegExp(escapeRegExp(WRONG_SIGN_IN)), 'after a wrong password for the deregistered account (it says no more)');
    await submitSignIn(p, USER.email, USER.password);
    await assertHeading(p, 'Your account has been deregistered');
    const text = await assertTextIncludes(p, `reregistered by ${ADMIN.name}, your organisation administrator`, 'the deregistered page names whom to ask');
    assert.match(text, /reregister/, `the deregistered page should say to ask for reregistration.\n${await describePage(p)}`);
    await a11y(p, 'deregistered');
  });

  step(`${ADMIN.name} signs in at day 90: her password has expired, so she changes it first`, async () => {
    const p = adaPage;
    journey.current = p;
    await signInWithEmailCode(p, ADMIN, { a11y: null });
    await assertHeading(p, 'Your password has expired');
    assertPath(p, '/account/password', `${ADMIN.name} signing in 90 days after choosing her password`);
    await a11y(p, 'admin-password-expired');
    await fill(p, 'Current password', ADMIN.password);
    await fill(p, 'Create a password', ADMIN.newPassword);
    await fill(p, 'Confirm your password', ADMIN.newPassword);
    await clickButton(p, 'Change password');
    await assertNoErrorSummary(p, 'after changing the expired password');
    await assertHeading(p, 'Administrator home');
  });

  step(`${ADMIN.name} sees ${USER.name} as Deregistered, with a "Reregister account" button`, async () => {
    const p = adaPage;
    await p.goto('/admin/users');
    await assertHeading(p, 'People');
    const row = p.getByRole('row').filter({ has: p.getByRole('cell', { name: USER.name, exact: true }) });
    await visible(row.first(), `a row for ${USER.name} in the users list`, p);
    const tags = (await row.first().locator('.govuk-tag').allInnerTexts()).map(normalise);
    assert.deepEqual(tags, ['Deregistered'], `the users list should tag ${USER.name} "Deregistered".\n${await describePage(p)}`);
    await a11y(p, 'admin-users-deregistered');
    await click(p, p.getByRole('link', { name: USER.name, exact: true }), `the link to ${USER.name}`);
    await assertHeading(p, USER.name);
    assert.equal(new URL(p.url()).pathname, new URL(brianUrl).pathname, `the link should open ${USER.name}'s page`);
    assert.equal(await summaryValue(p, 'Status'), 'Deregistered', `${USER.name}'s status`);
    await assertTextIncludes(p, 'will be deleted on', 'the user page says when the deregistered account will be deleted');
    await visible(p.getByRole('button', { name: 'Reregister account', exact: true }), 'a "Reregister account" button', p);
    await a11y(p, 'admin-user-deregistered');
  });

  step(`"Reregister account" makes ${USER.name} active again and emails him`, async () => {
    const p = adaPage;
    await clickButton(p, 'Reregister account');
    await assertHeading(p, USER.name);
    await assertSuccessBanner(p, 'after "Reregister account"', 'Account reregistered');
    assert.equal(await summaryValue(p, 'Status'), 'Active', `${USER.name}'s status after reregistration`);
    assert.equal(await p.getByRole('button', { name: 'Reregister account', exact: true }).count(), 0, 'no "Reregister account" button once reregistered');
    await a11y(p, 'admin-user-reregistered');
    const mail = await waitForCount(USER.email, REREGISTERED_SUBJECT, 1);
    assert.ok(mail.body.includes(ADMIN.name), `the reregistration email should say who reregistered him; it reads:\n${mail.body}`);
  });

  step(`${USER.name} signs in again and is sent to change his expired password first`, async () => {
    const p = brianPage;
    journey.current = p;
    await signInWithEmailCode(p, USER, { a11y: null });
    await assertHeading(p, 'Your password has expired');
    assertPath(p, '/account/password', `${USER.name} signing in after reregistration`);
    await a11y(p, 'user-password-expired');
    await fill(p, 'Current password', USER.password);
    await fill(p, 'Create a password', USER.newPassword);
    await fill(p, 'Confirm your password', USER.newPassword);
    await clickButton(p, 'Change password');
    await assertNoErrorSummary(p, 'after changing his expired password');
    await assertHeading(p, 'Your account');
    assertPath(p, '/home', 'after changing the expired password');
    await a11y(p, 'user-home-after-reregistration');
  });

  step(`${ADMIN.name}'s audit trail, filtered by "lifecycle", shows the reminders, the deregistration and the reregistration`, async () => {
    const p = adaPage;
    journey.current = p;
    await p.goto('/admin/audit');
    await filterAudit(p, { action: 'lifecycle' });
    await assertHeading(p, 'Audit trail');
    await assertNoErrorSummary(p, 'after filtering by "lifecycle"');
    const rows = await assertAuditTable(p, 'filtered by "lifecycle"');
    const about = (r) => `${r.by} ${r.about}`;
    assert.ok(rows.every((r) => r.action.startsWith('lifecycle.')), `only lifecycle events: ${JSON.stringify(rows.map((r) => r.action))}`);
    assert.equal(rows[0].action, 'lifecycle.reregistered', `newest first: the reregistration tops the list: ${JSON.stringify(rows[0])}`);
    assert.ok(about(rows[0]).includes(USER.name), `the reregistration is about ${USER.name}: ${JSON.stringify(rows[0])}`);
    assert.ok(rows.some((r) => r.action === 'lifecycle.deregistered' && about(r).includes(USER.name)), `a lifecycle.deregistered event about ${USER.name}: ${JSON.stringify(rows)}`);
    const reminders = rows.filter((r) => r.action === 'lifecycle.reminded' && about(r).includes(USER.name));
    assert.equal(reminders.length, 2, `two lifecycle.reminded events about ${USER.name}: ${JSON.stringify(rows)}`);
    await a11y(p, 'admin-audit-lifecycle');
  });
});
