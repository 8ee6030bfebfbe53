// Registering an organisation and activating accounts, in a real browser: the operator registers
// "Smith & Jones LLP" and invites its administrator; she activates her account from the emailed
// link (terms, texted code, password), signs in and adds a user; he activates his account (one
// step with JavaScript turned off) and signs in; she then sees him as active. A second factor is
// required by default: at each first sign-in the person sets up codes sent by email, and every
// sign-in then gives an emailed code after the password. Every page visited, including pages
// with form errors, is checked with axe and screenshotted.
//
// Run: USHER_BIN=target/debug/usher node --test tests/browser/

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  STEP_TIMEOUT_MS,
  assertErrorSummary,
  assertHeading,
  assertNoErrorSummary,
  assertSuccessBanner,
  assertTextIncludes,
  checkA11y,
  checkA11yWithoutScripts,
  click,
  clickButton,
  clickLink,
  describePage,
  escapeRegExp,
  fill,
  firstSignInWithEmailCodes,
  normalise,
  pageText,
  printedSetupLink,
  setUpEmailCodes,
  signInWithEmailCode,
  signOut,
  submitSetupForm,
  tokenLinkIn,
  useJourney,
  visible,
  waitForMessage,
} from './helpers.js';

const OPERATOR = { name: 'Olive Operator', email: 'olive@example.org', password: 'Tr1cky-Horse-42' };
const ORGANISATION = { name: 'Smith & Jones LLP', kind: 'Law firm', domain: 'smithjones.example' };
const ADMIN = {
  name: 'Ada Admin',
  email: 'ada@smithjones.example',
  mobile: '07700 900001',
  e164: '+447700900001',
  lastFour: '0001',
  password: 'Adm1n-Horse-Battery',
};
const USER = {
  name: 'Brian Barrister',
  email: 'brian@smithjones.example',
  mobile: '+44 7700 900123',
  e164: '+447700900123',
  lastFour: '0123',
  password: 'Us3r-Correct-Staple',
};
const ACTIVATION_SUBJECT = 'Activate your Usher account';

describe('organisation registration and account activation journey', { timeout: 20 * 60_000 }, () => {
  const journey = useJourney({ shotPrefix: 'activation-' });
  const { step, freshPage } = journey;

  // Carried from step to step.
  let setupLink;
  let operatorPage;
  let organisationUrl;
  let adaActivationLink;
  let adaPage;
  let adaPhone; // a second tab in Ada's context: her "phone", reading the dev mailbox
  let adaConfirmMobileText = null;
  let brianUrl;
  let brianActivationLink;
  let brianPage;
  let brianPhone;
  let brianConfirmMobileText = null;

  /**
   * A check of something a journey step recorded. Its failure is reported but does not stop the
   * journey; it is skipped when the journey never got far enough to record it.
   */
  function check(name, fn) {
    test(name, { timeout: STEP_TIMEOUT_MS }, (t) => fn(t));
  }

  // ----- small page helpers -----------------------------------------------------------------

  /** The status tag in the table row of the person called `name`. */
  async function assertTagInRow(p, name, tag) {
    const row = p.getByRole('row').filter({ has: p.getByRole('cell', { name, exact: true }) });
    await visible(row.first(), `a table row for "${name}"`, p);
    const tags = (await row.first().locator('.govuk-tag').allInnerTexts()).map(normalise);
    assert.deepEqual(tags, [tag], `the row for "${name}" should show the tag "${tag}".\n${await describePage(p)}`);
  }

  /** Opens /sign-in and signs in as `person`, with the password and an emailed code. */
  const signIn = (p, person) => signInWithEmailCode(p, person, { a11y: null });

  // ----- the dev mailbox ----------------------------------------------------------------------

  async function activationLinkFor(p, email, a11yName) {
    const mail = await waitForMessage(
      p,
      (m) => m.title === ACTIVATION_SUBJECT && m.to === email,
      `"${ACTIVATION_SUBJECT}" email to ${email}`,
      a11yName,
    );
    return tokenLinkIn(mail, journey.usher.baseUrl, 'activate', `the activation email to ${email}`);
  }

  async function textedCodeFor(p, e164, a11yName) {
    const sms = await waitForMessage(p, (m) => m.to === e164, `text message to ${e164}`, a11yName);
    assert.equal(sms.title, 'Text message', `a text message's card should be titled "Text message"; got "${sms.title}"`);
    const m = sms.body.match(/^\s*(\d{6}) is your Usher code/);
    assert.ok(m, `the text message to ${e164} should start with a 6-digit code and "is your Usher code"; it reads:\n${sms.body}`);
    return m[1];
  }

  // ----- the activation pages ------------------------------------------------------------------

  async function assertActivationStep(p, heading, stepNumber) {
    await assertHeading(p, heading);
    const caption = normalise(await p.locator('.govuk-caption-l').first().innerText());
    assert.equal(
      caption,
      `Activate your account – step ${stepNumber} of 3`,
      `the caption above "${heading}" should give the step.\n${await describePage(p)}`,
    );
  }

  /**
   * Terms page: Continue without ticking (error), then tick and Continue. `a11y` checks a page:
   * checkA11yWithoutScripts where JavaScript is off, since axe cannot run there.
   */
  async function acceptTerms(p, who, a11y = checkA11y) {
    await assertActivationStep(p, 'Terms and conditions', 1);
    await assertTextIncludes(p, ORGANISATION.name, 'the terms page names the organisation');
    await a11y(p, `${who}-activate-terms`);
    await clickButton(p, 'Continue');
    await assertActivationStep(p, 'Terms and conditions', 1);
    const error = /Confirm that you agree to the terms and conditions to continue/;
    await assertErrorSummary(p, error, 'after Continue without ticking the box');
    const inline = normalise(await p.locator('#agree-error').innerText());
    assert.match(inline, error, `the checkbox should carry the error message too; it says: ${inline}`);
    await a11y(p, `${who}-activate-terms-error`);
    const box = p.getByRole('checkbox', { name: 'I agree to the terms and conditions', exact: true });
    await visible(box, 'a checkbox "I agree to the terms and conditions"', p);
    await box.check();
    await clickButton(p, 'Continue');
    await assertActivationStep(p, 'Check your mobile number', 2);
    await assertNoErrorSummary(p, 'once the terms are agreed');
  }

  /** Confirm mobile → wrong code → real code → password → activated. */
  async function activateFromMobileStep(p, phone, person, who) {
    await assertActivationStep(p, 'Check your mobile number', 2);
    await assertTextIncludes(p, `ending ${person.lastFour}`, 'the mobile check shows the last 4 digits');
    const text = await pageText(p);
    assert.ok(
      !text.includes(person.e164) && !text.includes(person.mobile),
      `the mobile check should show only the last 4 digits, not the whole number.\n${await describePage(p)}`,
    );
    await checkA11y(p, `${who}-activate-check-mobile`);
    await clickButton(p, 'Confirm and send code');

    await assertActivationStep(p, 'Enter the code we texted you', 2);
    await assertTextIncludes(p, `ending ${person.lastFour}`, 'the code page shows the last 4 digits');
    await checkA11y(p, `${who}-activate-enter-code`);

    const code = await textedCodeFor(phone, person.e164, `${who}-dev-mailbox-code`);
    const wrong = code === '000000' ? '000001' : '000000';
    await fill(p, 'Code from the text message', wrong);
    await clickButton(p, 'Continue');
    await assertActivationStep(p, 'Enter the code we texted you', 2);
    const summary = await assertErrorSummary(p, /\S/, `after entering the wrong code ${wrong}`);
    assert.match(summary, /code/i, `the error after a wrong code should be about the code; it says: ${summary}`);
    await visible(p.locator('#code-error'), 'an error message by the code field after a wrong code', p);
    await checkA11y(p, `${who}-activate-wrong-code`);

    await fill(p, 'Code from the text message', code);
    await clickButton(p, 'Continue');
    await assertActivationStep(p, 'Create your password', 3);
    await assertNoErrorSummary(p, 'after entering the right code');
    await checkA11y(p, `${who}-activate-password`);

    await fill(p, 'Create a password', person.password);
    await fill(p, 'Confirm your password', person.password);
    await clickButton(p, 'Continue');
    await assertHeading(p, 'Your account is activated');
    await assertTextIncludes(p, person.email, 'the confirmation names the email address to sign in with');
    await checkA11y(p, `${who}-activated`);
  }

  // ----- 1. the operator -----------------------------------------------------------------------

  step('the operator sets up an account from the printed set-up link', async () => {
    setupLink = await printedSetupLink(journey.usher);
    ({ page: operatorPage } = await freshPage());
    journey.current = operatorPage;
    const p = operatorPage;
    await p.goto(setupLink);
    await assertHeading(p, 'Set up your operator account');
    await submitSetupForm(p, OPERATOR);
    await setUpEmailCodes(p, OPERATOR, { a11y: null });
    await signIn(p, OPERATOR);
    await assertHeading(p, 'Operator home');
    await checkA11y(p, 'activation-operator-home');
  });

  step('the operator finds "Register an organisation" on the Organisations page', async () => {
    const p = operatorPage;
    await clickLink(p, 'Organisations and their administrators');
    await assertHeading(p, 'Organisations');
    await checkA11y(p, 'operator-organisations-empty');
    await clickLink(p, 'Register an organisation');
    await assertHeading(p, 'Register an organisation');
    await checkA11y(p, 'operator-register-organisation');
  });

  step('registering an organisation with nothing filled in shows an error summary', async () => {
    const p = operatorPage;
    await clickButton(p, 'Register organisation');
    await assertHeading(p, 'Register an organisation');
    await assertErrorSummary(p, /\S/, 'after submitting the empty organisation form');
    await checkA11y(p, 'operator-register-organisation-errors');
  });

  step(`the operator registers "${ORGANISATION.name}"`, async () => {
    const p = operatorPage;
    await fill(p, 'Organisation name', ORGANISATION.name);
    const kinds = p.getByRole('group', { name: 'What kind of organisation is it?', exact: true });
    await visible(kinds, 'a fieldset with the legend "What kind of organisation is it?"', p);
    const radio = kinds.getByRole('radio', { name: ORGANISATION.kind, exact: true });
    await visible(radio, `a radio "${ORGANISATION.kind}" in that fieldset`, p);
    await radio.check();
    await fill(p, 'Email domains (optional)', ORGANISATION.domain);
    await clickButton(p, 'Register organisation');
    await assertHeading(p, ORGANISATION.name);
    await assertSuccessBanner(p, 'after registering the organisation');
    await assertTextIncludes(p, ORGANISATION.kind, 'the organisation page shows its kind');
    await assertTextIncludes(p, ORGANISATION.domain, 'the organisation page shows its email domain');
    organisationUrl = p.url();
    await checkA11y(p, 'operator-organisation-registered');
  });

  step(`the operator invites ${ADMIN.name} as its administrator`, async () => {
    const p = operatorPage;
    await clickLink(p, 'Invite an administrator');
    await assertHeading(p, 'Invite an administrator');
    await checkA11y(p, 'operator-invite-administrator');
    await fill(p, 'Full name', ADMIN.name);
    await fill(p, 'Email address', ADMIN.email);
    await fill(p, 'Mobile phone number', ADMIN.mobile);
    await clickButton(p, 'Send invitation');
    await assertHeading(p, ORGANISATION.name);
    assert.equal(
      new URL(p.url()).pathname,
      new URL(organisationUrl).pathname,
      'after "Send invitation" the operator should be back on the organisation page',
    );
    await assertSuccessBanner(p, 'after inviting the administrator');
    await assertTagInRow(p, ADMIN.name, 'Invited');
    await checkA11y(p, 'operator-administrator-invited');
  });

  step('the organisations list and the terms page are accessible', async () => {
    const p = operatorPage;
    await p.goto('/operator/organisations');
    await assertHeading(p, 'Organisations');
    await visible(p.getByRole('link', { name: ORGANISATION.name, exact: true }), `a link to "${ORGANISATION.name}"`, p);
    await checkA11y(p, 'operator-organisations');
    await p.goto('/operator/terms');
    await assertHeading(p, 'Terms and conditions');
    await checkA11y(p, 'operator-terms');
  });

  step('the operator signs out', async () => {
    await signOut(operatorPage, 'operator-signed-out');
  });

  // ----- 2. the activation email ---------------------------------------------------------------

  step(`the dev mailbox holds the activation email to ${ADMIN.email}`, async () => {
    adaActivationLink = await activationLinkFor(operatorPage, ADMIN.email, 'dev-mailbox-ada-activation');
  });

  // ----- 3. Ada activates ------------------------------------------------------------------------

  step(`${ADMIN.name} opens the link and agrees to the terms`, async () => {
    const { context, page } = await freshPage();
    adaPage = page;
    adaPhone = await context.newPage();
    journey.current = adaPage;
    await adaPage.goto(adaActivationLink);
    await acceptTerms(adaPage, 'ada');
    adaConfirmMobileText = await pageText(adaPage);
  });

  step(`${ADMIN.name} confirms her mobile with the texted code and creates a password`, async () => {
    await activateFromMobileStep(adaPage, adaPhone, ADMIN, 'ada');
  });

  step('the used activation link cannot be used again', async () => {
    const p = adaPage;
    await p.goto(adaActivationLink);
    await assertHeading(p, 'This link has already been used');
    await checkA11y(p, 'ada-activation-link-used');
  });

  // ----- 4. Ada, as administrator, adds Brian ------------------------------------------------------

  step(`${ADMIN.name} signs in, sets up emailed codes, and reaches the users of ${ORGANISATION.name}`, async () => {
    const p = adaPage;
    await firstSignInWithEmailCodes(p, ADMIN, { shot: 'activation-ada-' });
    await assertHeading(p, 'Administrator home');
    await checkA11y(p, 'admin-home');
    const link = p.getByRole('link', { name: `People in ${ORGANISATION.name}` }).first();
    await click(p, link, `the "People in ${ORGANISATION.name}" link`);
    await assertHeading(p, 'People');
    await checkA11y(p, 'admin-users-empty');
    await clickLink(p, 'Add a user');
    await assertHeading(p, 'Add a user');
    await checkA11y(p, 'admin-add-user');
  });

  step('adding a user whose email is outside the organisation’s domain shows an error', async () => {
    const p = adaPage;
    await fill(p, 'Full name', USER.name);
    await fill(p, 'Email address', 'brian@gmail.example');
    await fill(p, 'Mobile phone number', USER.mobile);
    await clickButton(p, 'Add user');
    await assertHeading(p, 'Add a user');
    await assertErrorSummary(p, new RegExp(escapeRegExp(`@${ORGANISATION.domain}`)), 'for an email outside the domain');
    await checkA11y(p, 'admin-add-user-wrong-domain');
  });

  step(`${ADMIN.name} adds ${USER.name}`, async () => {
    const p = adaPage;
    await fill(p, 'Full name', USER.name);
    await fill(p, 'Email address', USER.email);
    await fill(p, 'Mobile phone number', USER.mobile);
    await clickButton(p, 'Add user');
    await assertHeading(p, USER.name);
    await assertSuccessBanner(p, 'after adding the user');
    const tags = (await p.locator('main .govuk-tag').allInnerTexts()).map(normalise);
    assert.ok(tags.includes('Invited'), `the new user's page should show the tag "Invited"; tags: ${JSON.stringify(tags)}`);
    await assertTextIncludes(p, `Ends ${USER.lastFour}`, 'the user page shows the end of the mobile number');
    brianUrl = p.url();
    await checkA11y(p, 'admin-user-added');
  });

  step(`searching the users for "brian" finds ${USER.name}`, async () => {
    const p = adaPage;
    await p.goto('/admin/users');
    await assertHeading(p, 'People');
    await fill(p, 'Search by name or email address', 'brian');
    await clickButton(p, 'Search');
    await assertHeading(p, 'People');
    assert.equal(new URL(p.url()).searchParams.get('q'), 'brian', `the search should be in the address: ${p.url()}`);
    await visible(p.getByRole('link', { name: USER.name, exact: true }), `a link to "${USER.name}" in the results`, p);
    await assertTagInRow(p, USER.name, 'Invited');
    await checkA11y(p, 'admin-users-search');
  });

  step(`${ADMIN.name} opens "Change mobile number" and goes back without changing it`, async () => {
    const p = adaPage;
    await p.goto(brianUrl);
    await assertHeading(p, USER.name);
    await click(p, p.getByRole('link', { name: 'Change mobile number', exact: true }), 'the "Change mobile number" link');
    await assertHeading(p, 'Correct the mobile number');
    await assertTextIncludes(p, USER.lastFour, 'the mobile form shows the current last 4 digits');
    await checkA11y(p, 'admin-correct-mobile');
    await click(p, p.getByRole('link', { name: 'Back', exact: true }), 'the "Back" link');
    await assertHeading(p, USER.name);
    await assertTextIncludes(p, `Ends ${USER.lastFour}`, 'the mobile number is unchanged');
    await checkA11y(p, 'admin-user');
  });

  step(`${ADMIN.name} signs out`, async () => {
    await signOut(adaPage, 'admin-signed-out');
  });

  // ----- 5. Brian activates -------------------------------------------------------------------------

  step(`${USER.name} reads his activation email in the dev mailbox`, async () => {
    const { context, page } = await freshPage();
    brianPage = page;
    brianPhone = await context.newPage();
    journey.current = brianPhone;
    brianActivationLink = await activationLinkFor(brianPhone, USER.email, 'dev-mailbox-brian-activation');
    assert.notEqual(brianActivationLink, adaActivationLink, 'each person gets their own activation link');
  });

  step(`${USER.name} agrees to the terms with JavaScript turned off`, async () => {
    const noJs = await freshPage({ javaScriptEnabled: false });
    const p = noJs.page;
    journey.current = p;
    await p.goto(brianActivationLink);
    // No govuk-frontend JavaScript runs: the body never gets the js-enabled class.
    const bodyClass = (await p.locator('body').getAttribute('class')) ?? '';
    assert.ok(!/\bjs-enabled\b/.test(bodyClass), `JavaScript should be off in this context; body class: "${bodyClass}"`);
    await acceptTerms(p, 'brian-no-js', checkA11yWithoutScripts);
    await checkA11yWithoutScripts(p, 'brian-no-js-activate-check-mobile');
    await noJs.context.close();
  });

  step(`${USER.name} resumes the link in another browser at "Check your mobile number"`, async () => {
    journey.current = brianPage;
    await brianPage.goto(brianActivationLink);
    await assertActivationStep(brianPage, 'Check your mobile number', 2);
    brianConfirmMobileText = await pageText(brianPage);
  });

  step(`${USER.name} confirms his mobile with the texted code and creates a password`, async () => {
    await activateFromMobileStep(brianPage, brianPhone, USER, 'brian');
  });

  step(`${USER.name} signs in, sets up emailed codes, and sees "Your account"`, async () => {
    const p = brianPage;
    await firstSignInWithEmailCodes(p, USER, { shot: 'activation-brian-' });
    await assertHeading(p, 'Your account');
    await assertTextIncludes(p, USER.name, 'the home page names the user');
    await checkA11y(p, 'user-home');
    await signOut(p, 'user-signed-out');
  });

  // ----- 6. Ada sees Brian active -------------------------------------------------------------------

  step(`${ADMIN.name} sees ${USER.name} as "Active"`, async () => {
    const p = adaPage;
    journey.current = p;
    await signIn(p, ADMIN);
    await assertHeading(p, 'Administrator home');
    await p.goto('/admin/users');
    await assertHeading(p, 'People');
    await assertTagInRow(p, USER.name, 'Active');
    await checkA11y(p, 'admin-users-active');
  });

  // ----- wording checks that do not stop the journey ------------------------------------------------

  check(`${USER.name}'s mobile check names ${ADMIN.name}, the administrator who added him`, (t) => {
    if (brianConfirmMobileText === null) return t.skip('the journey did not reach his "Check your mobile number" page');
    assert.ok(
      brianConfirmMobileText.includes(`ask ${ADMIN.name}, your organisation administrator`),
      `"Check your mobile number" for ${USER.name} should say who to ask: "…ask ${ADMIN.name}, your organisation administrator"; ` +
        `it reads: ${brianConfirmMobileText}`,
    );
    return undefined;
  });

  check(`${ADMIN.name}'s mobile check does not call the operator her organisation administrator`, (t) => {
    if (adaConfirmMobileText === null) return t.skip('the journey did not reach her "Check your mobile number" page');
    // Ada was invited by the operator: she is the organisation's administrator herself, and the
    // operator belongs to no organisation.
    const wrong = `${OPERATOR.name}, your organisation administrator`;
    assert.ok(
      !adaConfirmMobileText.includes(wrong),
      `"Check your mobile number" for ${ADMIN.name} (an administrator invited by the operator) says "${wrong}", ` +
        `but ${OPERATOR.name} is the service operator, not an administrator of ${ORGANISATION.name}; ` +
        `it reads: ${adaConfirmMobileText}`,
    );
    return undefined;
  });
});
