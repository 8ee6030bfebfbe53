// Shared pieces of the browser tests: start an Usher server on a free port with a throwaway
// data directory, launch Debian's chromium through playwright-core (never a downloaded
// browser), and check pages with axe.
//
// Environment:
//   USHER_BIN        the usher binary (default: target/debug/usher in the repository)
//   USHER_CHROMIUM   the browser (default: /usr/bin/chromium)

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const artifactsDir = path.join(here, 'artifacts');

/** Generous limits: a debug build on a busy 2-core machine can be slow. */
export const SERVER_START_TIMEOUT_MS = 60_000;
export const ACTION_TIMEOUT_MS = 30_000;
export const NAVIGATION_TIMEOUT_MS = 60_000;

const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '');

function usherBin() {
  const configured = process.env.USHER_BIN;
  const candidates = configured
    ? [path.resolve(process.cwd(), configured), path.resolve(repoRoot, configured)]
    : [path.join(repoRoot, 'target', 'debug', 'usher')];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(
      `The usher binary was not found (looked at ${candidates.join(', ')}). ` +
        'Build it with `cargo build -p usher` and set USHER_BIN=target/debug/usher.',
    );
  }
  return found;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `usher serve --test-clock` on a free port with a fresh data directory and waits until
 * /healthz answers 200.
 *
 * Returns { baseUrl, dataDir, stdout(), stderr(), output(), waitForLine(regex, timeoutMs), stop() }.
 * waitForLine resolves with the match of the first stdout line matching regex (lines already
 * printed count).
 */
export async function startUsher({ extraEnv = {}, args = [] } = {}) {
  const bin = usherBin();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'usher-browser-'));

  let out = '';
  let err = '';
  let exited = null; // { code, signal } once the process ends
  const listeners = new Set();
  const notify = () => listeners.forEach((fn) => fn());

  const child = spawn(bin, ['serve', '--test-clock', ...args], {
    cwd: dataDir,
    env: {
      ...process.env,
      USHER_ALLOW_TEST_CLOCK: '1',
      USHER_DATA_DIR: dataDir,
      USHER_LISTEN: `127.0.0.1:${port}`,
      // Several servers run side by side: each management listener takes a free port.
      USHER_MANAGEMENT_LISTEN: '127.0.0.1:0',
      USHER_PUBLIC_BASE_URL: baseUrl,
      USHER_LOG_LEVEL: 'warn',
      NO_COLOR: '1',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    out += stripAnsi(d);
    notify();
  });
  child.stderr.on('data', (d) => {
    err += stripAnsi(d);
    notify();
  });
  child.on('error', (e) => {
    exited = { code: null, signal: null, error: e };
    notify();
  });
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    notify();
  });
  // Never leave a server behind, whatever happens to the test process.
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  const describeOutput = () =>
    `--- usher stdout ---\n${out.trimEnd() || '(nothing)'}\n--- usher stderr ---\n${err.trimEnd() || '(nothing)'}`;
  const describeExit = () =>
    exited?.error
      ? `could not be started: ${exited.error.message}`
      : `exited (code ${exited?.code}, signal ${exited?.signal})`;

  async function stop() {
    process.off('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (!exited && Date.now() < deadline) await sleep(50);
      if (!exited) {
        child.kill('SIGKILL');
        while (!exited) await sleep(20);
      }
    }
    await fsp.rm(dataDir, { recursive: true, force: true });
  }

  // Wait for /healthz.
  const started = Date.now();
  let lastProblem = 'no answer yet';
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`usher ${describeExit()} before /healthz answered.\n${describeOutput()}`);
    }
    if (Date.now() - started > SERVER_START_TIMEOUT_MS) {
      await stop();
      throw new Error(
        `usher did not answer 200 on ${baseUrl}/healthz within ${SERVER_START_TIMEOUT_MS / 1000} s ` +
          `(last: ${lastProblem}).\n${describeOutput()}`,
      );
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      lastProblem = `HTTP ${res.status}`;
    } catch (e) {
      lastProblem = e.cause?.code ?? e.message;
    }
    await sleep(200);
  }

  function waitForLine(regex, timeoutMs = ACTION_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (const line of out.split('\n')) {
          const m = line.match(regex);
          if (m) return finish(() => resolve(m));
        }
        if (exited) {
          return finish(() =>
            reject(new Error(`usher ${describeExit()} before printing a line matching ${regex}.\n${describeOutput()}`)),
          );
        }
        return undefined;
      };
      const timer = setTimeout(() => {
        const inStderr = err.split('\n').some((l) => regex.test(l));
        finish(() =>
          reject(
            new Error(
              `usher printed no stdout line matching ${regex} within ${timeoutMs / 1000} s` +
                (inStderr ? ' (a matching line went to stderr instead of stdout)' : '') +
                `.\n${describeOutput()}`,
            ),
          ),
        );
      }, timeoutMs);
      function finish(fn) {
        clearTimeout(timer);
        listeners.delete(check);
        fn();
      }
      listeners.add(check);
      check();
    });
  }

  return {
    baseUrl,
    dataDir,
    stdout: () => out,
    stderr: () => err,
    output: describeOutput,
    waitForLine,
    stop,
  };
}

/**
 * Launches Debian's chromium headless. playwright-core's launch() gives the browser a fresh
 * temporary profile (user-data-dir) and removes it on close; nothing is ever downloaded.
 */
export async function launchBrowser() {
  const executablePath = process.env.USHER_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    throw new Error(
      `No browser at ${executablePath}. Install Debian's chromium (apt-get install chromium) ` +
        'or run scripts/test, which installs it.',
    );
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: SERVER_START_TIMEOUT_MS,
  });
}

/** A new context and page with the base URL and generous timeouts. */
export async function newPage(browser, baseUrl, contextOptions = {}) {
  const context = await browser.newContext({ baseURL: baseUrl, ...contextOptions });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
  const page = await context.newPage();
  return { context, page };
}

function safeName(name) {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-');
}

/** Saves a full-page screenshot to tests/browser/artifacts/<name>.png and returns its path. */
export async function screenshot(page, name) {
  await fsp.mkdir(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${safeName(name)}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Screenshots the page to artifacts/<name>.png, then runs axe with the WCAG 2.2 AA tags and
 * asserts there are no violations, listing each one when there are.
 */
export async function checkA11y(page, name) {
  const shot = await screenshot(page, name);
  const results = await new AxeBuilder({ page }).withTags(AXE_TAGS).analyze();
  const violations = results.violations;
  if (violations.length > 0) {
    const report = violations
      .map((v) => {
        const nodes = v.nodes
          .map((n) => `      - ${n.target.join(' ')}${n.failureSummary ? `\n        ${n.failureSummary.replace(/\n/g, '\n        ')}` : ''}`)
          .join('\n');
        return `  * ${v.id} (${v.impact ?? 'unknown impact'}): ${v.help}\n    ${v.helpUrl}\n${nodes}`;
      })
      .join('\n');
    assert.fail(
      `axe found ${violations.length} accessibility violation(s) on "${name}" (${page.url()}); ` +
        `screenshot: ${shot}\n${report}`,
    );
  }
  return results;
}

/**
 * Runs action (a click or submit that loads a new document) and waits until the new document
 * has loaded. Works with JavaScript disabled.
 */
export async function navigateBy(page, action, what = 'the action', timeout = NAVIGATION_TIMEOUT_MS) {
  const navigated = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
    timeout,
  });
  await action();
  try {
    await navigated;
  } catch (e) {
    const summary = await describePage(page);
    throw new Error(`${what} did not load a new page within ${timeout / 1000} s (${e.message.split('\n')[0]}).\n${summary}`);
  }
  await page.waitForLoadState('load', { timeout });
}

/** The string with runs of white space folded to one space and the ends trimmed. */
export const normalise = (s) => (s ?? '').replace(/\s+/g, ' ').trim();

/** A short description of the page for failure messages. */
export async function describePage(page) {
  try {
    const h1 = await page.locator('h1').allInnerTexts();
    const errors = await page.locator('.govuk-error-summary').allInnerTexts();
    const body = normalise(await page.locator('body').innerText({ timeout: 5_000 }));
    return (
      `  page: ${page.url()}\n  h1: ${JSON.stringify(h1.map(normalise))}\n` +
      (errors.length ? `  error summary: ${JSON.stringify(errors.map(normalise))}\n` : '') +
      `  text: ${body.slice(0, 600)}${body.length > 600 ? '…' : ''}`
    );
  } catch (e) {
    return `  page: ${page.url()} (could not read it: ${e.message.split('\n')[0]})`;
  }
}

/** Asserts the page's one h1 reads exactly `expected` (whitespace normalised). */
export async function assertHeading(page, expected) {
  const h1 = page.locator('h1');
  try {
    await h1.first().waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
  } catch {
    assert.fail(`expected an h1 "${expected}" but the page has no visible h1.\n${await describePage(page)}`);
  }
  const texts = (await h1.allInnerTexts()).map(normalise);
  if (texts.length !== 1 || texts[0] !== expected) {
    assert.fail(`expected one h1 "${expected}", found ${JSON.stringify(texts)}.\n${await describePage(page)}`);
  }
}

/** The whole visible text of the page, whitespace normalised. */
export async function pageText(page) {
  return normalise(await page.locator('body').innerText());
}

/**
 * checkA11y for a page in a context with JavaScript turned off, where axe cannot run (its
 * evaluate never returns). Serves a copy of the page as the browser rendered it, scripts
 * removed, at the same address in a scripting-enabled context (so /assets/... still load from
 * the server), and checks and screenshots that copy.
 */
export async function checkA11yWithoutScripts(page, name) {
  const url = page.url();
  const html = (await page.content()).replace(/<script\b[^>]*>[\s\S]*?<\/script\s*>/gi, '');
  const context = await page.context().browser().newContext();
  try {
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
    const copy = await context.newPage();
    await copy.route(url, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html }),
    );
    await copy.goto(url);
    return await checkA11y(copy, name);
  } finally {
    await context.close();
  }
}

// ----- journeys: steps that stop at the first failure ------------------------------------------

/** How long one journey step may take. */
export const STEP_TIMEOUT_MS = 180_000;
/** How long to wait for the delivery worker to move a queued message into the dev mailbox. */
export const MAILBOX_WAIT_MS = 60_000;

/** The string with every regular-expression metacharacter escaped. */
export const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Sets up a journey inside describe(): before() starts usher and the browser; after() closes
 * every context opened with freshPage(), the browser and the server (printing the server's
 * output when a step failed). Returns an object with usher, browser, current (the page a failing
 * step screenshots), failed (the first failed step's name), freshPage(options) and
 * step(name, fn): a test skipped once an earlier step has failed, which screenshots `current` to
 * artifacts/FAILED-<shotPrefix><name>.png when it fails. With stepLimit, a step fails 10 s before
 * node:test's own time-out, so it is still marked as failed and screenshotted. `server` is passed
 * to startUsher (for example { extraEnv: { USHER_LIFECYCLE_RUN_EVERY: '1s' } }).
 */
export function useJourney({ shotPrefix = '', stepLimit = true, server = {} } = {}) {
  const contexts = [];
  const journey = {
    usher: null,
    browser: null,
    current: null,
    failed: null,
    /** A new context and page on the server, closed after the journey. */
    async freshPage(options = {}) {
      const p = await newPage(journey.browser, journey.usher.baseUrl, options);
      contexts.push(p.context);
      return p;
    },
    /** A step of the journey: skipped once an earlier one has failed; screenshots on failure. */
    step(name, fn) {
      test(name, { timeout: STEP_TIMEOUT_MS }, async (t) => {
        if (journey.failed) {
          t.skip(`skipped because "${journey.failed}" failed`);
          return;
        }
        let timer;
        try {
          if (stepLimit) {
            const limit = STEP_TIMEOUT_MS - 10_000;
            await Promise.race([
              fn(t),
              new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Error(`the step did not finish within ${limit / 1000} s`)), limit);
              }),
            ]);
          } else {
            await fn(t);
          }
        } catch (e) {
          journey.failed = name;
          const { current } = journey;
          if (current && !current.isClosed()) {
            try {
              const shot = await screenshot(current, `FAILED-${shotPrefix}${name}`);
              e.message += `\n  screenshot: ${shot}`;
            } catch {
              // the page may be gone; the original error matters more
            }
          }
          throw e;
        } finally {
          clearTimeout(timer);
        }
      });
    },
  };

  before(async () => {
    journey.usher = await startUsher(server);
    journey.browser = await launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await journey.browser?.close().catch(() => {});
    if (journey.usher) {
      if (journey.failed) console.log(`Server output:\n${journey.usher.output()}`);
      await journey.usher.stop();
    }
  });

  return journey;
}

// ----- small page helpers -------------------------------------------------------------------

/** A link, or a link styled as a button (role="button"), with this accessible name. */
export const linkOrButton = (p, name) =>
  p.getByRole('link', { name, exact: true }).or(p.getByRole('button', { name, exact: true })).first();

/** Waits for `locator` to be visible, failing with "expected <what>" and the page; returns it. */
export async function visible(locator, what, p) {
  try {
    await locator.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
  } catch {
    assert.fail(`expected ${what}.\n${await describePage(p)}`);
  }
  return locator;
}

/** Clicks a visible `locator` and waits for the new page it loads. */
export async function click(p, locator, what) {
  await visible(locator, `${what} to click`, p);
  await navigateBy(p, () => locator.click(), `Clicking ${what}`);
}

/** Clicks the button called `name` and waits for the new page. */
export const clickButton = (p, name) =>
  click(p, p.getByRole('button', { name, exact: true }), `the "${name}" button`);

/** Clicks the link (or link styled as a button) called `name` and waits for the new page. */
export const clickLink = (p, name) => click(p, linkOrButton(p, name), `the "${name}" link`);

/** Fills the visible field labelled exactly `label` with `value`. */
export async function fill(p, label, value) {
  const field = p.getByLabel(label, { exact: true });
  await visible(field, `a field labelled "${label}"`, p);
  await field.fill(value);
}

/** Asserts an error summary is shown and matches `pattern`; returns its text. */
export async function assertErrorSummary(p, pattern, what) {
  const summary = await visible(p.locator('.govuk-error-summary'), `an error summary (.govuk-error-summary) ${what}`, p);
  const text = normalise(await summary.innerText());
  assert.match(text, pattern, `the error summary ${what} should match ${pattern}; it says: ${text}`);
  return text;
}

/** Asserts the page shows no error summary. */
export async function assertNoErrorSummary(p, what) {
  const count = await p.locator('.govuk-error-summary').count();
  if (count > 0) assert.fail(`expected no error summary ${what}.\n${await describePage(p)}`);
}

/** Asserts a success banner is shown (saying `expected`, when given); returns its text. */
export async function assertSuccessBanner(p, what, expected) {
  const banner = await visible(
    p.locator('.govuk-notification-banner--success'),
    `a success banner (.govuk-notification-banner--success) ${what}`,
    p,
  );
  const text = normalise(await banner.innerText());
  if (expected !== undefined) {
    assert.ok(text.includes(expected), `the success banner ${what} should say "${expected}"; it says: ${text}`);
  }
  return text;
}

/** Asserts the page's visible text includes `expected`; returns the text. */
export async function assertTextIncludes(p, expected, what) {
  const text = await pageText(p);
  if (!text.includes(expected)) assert.fail(`${what}: expected the page to include "${expected}".\n${await describePage(p)}`);
  return text;
}

// ----- setting up, signing in and out -----------------------------------------------------------

/** The set-up link the server prints for the first operator. */
export async function printedSetupLink(usher) {
  const [, link] = await usher.waitForLine(/Set up the first operator: (\S+)/);
  return link;
}

/**
 * Fills in the operator set-up form with `person` and lands on "Set up a second factor" (the
 * new operator is signed in only as far as the set-up stage).
 */
export async function submitSetupForm(p, person) {
  await fill(p, 'Full name', person.name);
  await fill(p, 'Email address', person.email);
  await fill(p, 'Create a password', person.password);
  await fill(p, 'Confirm your password', person.password);
  await clickButton(p, 'Create account');
  await assertHeading(p, 'Set up a second factor');
  assertPath(p, '/set-up', 'after creating the operator account');
}

/** Asserts the browser is at the path `expected` (`what` says when, for the message). */
export function assertPath(p, expected, what) {
  const actual = new URL(p.url()).pathname;
  assert.equal(actual, expected, `${what}: expected to be at ${expected}, but the browser is at ${p.url()}`);
}

/** Asserts a "Sign in" link or button is visible (`where` says where, for the message). */
export async function assertSignInOffered(p, where) {
  await visible(linkOrButton(p, 'Sign in'), `a "Sign in" link or button ${where}`, p);
}

/** Fills in the sign-in form of the page the browser is on and presses "Sign in". */
export async function submitSignIn(p, email, password) {
  await assertHeading(p, 'Sign in');
  await fill(p, 'Email address', email);
  await fill(p, 'Password', password);
  await clickButton(p, 'Sign in');
}

/**
 * Presses "Sign out" (in the header), expects "You have signed out" with a "Sign in" link or
 * button, and checks the page with `a11y`.
 */
export async function signOut(p, a11yName, a11y = checkA11y) {
  await click(p, p.locator('header').getByRole('button', { name: 'Sign out', exact: true }), 'the "Sign out" button in the header');
  await assertHeading(p, 'You have signed out');
  await assertSignInOffered(p, 'after signing out');
  await a11y(p, a11yName);
}

// ----- the dev mailbox ------------------------------------------------------------------------

/** Opens /dev/mailbox and checks its heading. */
export async function openMailbox(p) {
  await p.goto('/dev/mailbox');
  await assertHeading(p, 'Dev mailbox');
}

/** Every message on the dev mailbox page, newest first, as { title, to, body }. */
export async function readMailbox(p) {
  return p.locator('.govuk-summary-card').evaluateAll((cards) =>
    cards.map((card) => {
      const title = card.querySelector('.govuk-summary-card__title')?.textContent ?? '';
      let to = '';
      for (const row of card.querySelectorAll('.govuk-summary-list__row')) {
        if ((row.querySelector('dt')?.textContent ?? '').trim() === 'To') {
          to = row.querySelector('dd')?.textContent ?? '';
        }
      }
      const body = card.querySelector('pre.usher-message-body')?.textContent ?? '';
      return { title: title.replace(/\s+/g, ' ').trim(), to: to.trim(), body };
    }),
  );
}

/**
 * Opens /dev/mailbox on `p` (reloading while the delivery worker catches up) until the newest
 * message satisfying `want(message, index, messages)` is there; checks the page with `a11y`
 * (named a11yName) and returns that message.
 */
export async function waitForMessage(p, want, what, a11yName, a11y = checkA11y) {
  const deadline = Date.now() + MAILBOX_WAIT_MS;
  let messages = [];
  for (;;) {
    await openMailbox(p);
    messages = await readMailbox(p);
    const found = messages.find(want);
    if (found) {
      await a11y(p, a11yName);
      return found;
    }
    if (Date.now() > deadline) break;
    await sleep(500);
  }
  const list = messages.map((m) => `    - "${m.title}" to ${m.to}: ${normalise(m.body).slice(0, 100)}`).join('\n');
  assert.fail(
    `the dev mailbox has no ${what} after ${MAILBOX_WAIT_MS / 1000} s; it holds ${messages.length} message(s):\n` +
      (list || '    (none)'),
  );
}

/** The link <baseUrl>/<route>/<43-char token> in `mail`'s body; `what` names the mail on failure. */
export function tokenLinkIn(mail, baseUrl, route, what) {
  const re = new RegExp(`${escapeRegExp(baseUrl)}/${route}/[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])`);
  const m = mail.body.match(re);
  assert.ok(m, `${what} should contain a link ${baseUrl}/${route}/<43 chars>; its body:\n${mail.body}`);
  return m[0];
}

// ----- the test clock -----------------------------------------------------------------------

async function testClock(baseUrl, init = {}) {
  const res = await fetch(`${baseUrl}/api/v1/test-clock`, { ...init, signal: AbortSignal.timeout(ACTION_TIMEOUT_MS) });
  const text = await res.text();
  const what = init.method === 'POST' ? `POST /api/v1/test-clock ${init.body}` : 'GET /api/v1/test-clock';
  assert.equal(res.status, 200, `${what} should answer 200; it answered ${res.status}: ${text}`);
  const clock = JSON.parse(text);
  assert.ok(Number.isInteger(clock.unix), `${what} should answer {"now", "unix"}; it answered ${text}`);
  return clock;
}

/** The server's test clock, { now, unix } (from the test process: loopback, no cookies). */
export const clockNow = (baseUrl) => testClock(baseUrl);

/** Moves the server's test clock forward by `span` ("30s", "91d"); returns { now, unix }. */
export const advanceClock = (baseUrl, span) =>
  testClock(baseUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ advance: span }),
  });

// ----- authenticator-app codes (RFC 6238), independent of the server's implementation ----------

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The bytes of a base32 key as an app would take it typed in: spaces and padding ignored. */
export function base32Decode(text) {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const out = [];
  let buffer = 0;
  let bits = 0;
  for (const ch of clean) {
    const value = BASE32_ALPHABET.indexOf(ch);
    if (value < 0) throw new Error(`"${ch}" is not a base32 character (in "${text}")`);
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((buffer >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/**
 * The TOTP code (HMAC-SHA1, 30-second steps) of `key` (bytes) at `unix` seconds: HMAC over the
 * 8-byte big-endian step counter, dynamic truncation, the last `digits` digits.
 */
export function totpCode(key, unix, { digits = 6, step = 30 } = {}) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / step)));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

// ----- codes sent by email and text -------------------------------------------------------------

export const EMAIL_CODE_SUBJECT = 'Your Usher code';

/**
 * Runs `action` (which makes the server send a code to `to`: an email address, or a mobile in
 * E.164 for a text) and returns the 6-digit code of the message it sent. The dev mailbox is read
 * in a separate, cookie-less context with JavaScript on (so this works for pages without
 * JavaScript, and never disturbs the page's session). The clock of a test server stands still,
 * so the mailbox's order cannot tell old from new: the new message is the one whose body was not
 * there before `action`. The mailbox is checked with `a11y` as `a11yName` when a name is given.
 */
export async function codeSentBy(p, to, action, a11yName = null, a11y = checkA11y) {
  const byText = to.startsWith('+');
  const want = byText
    ? (m) => m.title === 'Text message' && m.to === to
    : (m) => m.title === EMAIL_CODE_SUBJECT && m.to === to;
  const what = byText ? `a new text message to ${to}` : `a new "${EMAIL_CODE_SUBJECT}" email to ${to}`;
  const context = await p.context().browser().newContext({ baseURL: new URL(p.url()).origin });
  try {
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
    const mailbox = await context.newPage();
    await openMailbox(mailbox);
    const before = new Set((await readMailbox(mailbox)).filter(want).map((m) => m.body));
    await action();
    const check = a11yName ? a11y : async () => {};
    const message = await waitForMessage(mailbox, (m) => want(m) && !before.has(m.body), what, a11yName, check);
    const m = byText
      ? message.body.match(/^\s*(\d{6}) is your Usher code/)
      : message.body.match(/Your Usher code is (\d{6})\b/);
    assert.ok(
      m,
      `${what} should ${byText ? 'start "<6 digits> is your Usher code"' : 'say "Your Usher code is <6 digits>"'}; it reads:\n${message.body}`,
    );
    return m[1];
  } finally {
    await context.close();
  }
}

/** The recovery codes listed on the page (ul.usher-recovery-codes code), checked to be 10 distinct ones. */
export async function recoveryCodesOn(p, what) {
  const list = await visible(p.locator('ul.govuk-list.usher-recovery-codes'), `a list of recovery codes (ul.govuk-list.usher-recovery-codes) ${what}`, p);
  const codes = (await list.locator('li code').allInnerTexts()).map(normalise);
  assert.equal(codes.length, 10, `${what}: expected 10 recovery codes, found ${codes.length}: ${JSON.stringify(codes)}`);
  assert.equal(new Set(codes).size, 10, `${what}: the recovery codes should all differ: ${JSON.stringify(codes)}`);
  for (const c of codes) assert.ok(c.length >= 8, `${what}: a recovery code looks too short: "${c}"`);
  return codes;
}

/** The a11y check used by the second-factor helpers: `a11y` with names prefixed by `shot`, or none when `a11y` is null. */
function namedCheck({ a11y = checkA11y, shot = '' } = {}) {
  return {
    check: (p, name) => (a11y ? a11y(p, `${shot}${name}`) : undefined),
    mailboxName: (name) => (a11y ? `${shot}${name}` : null),
    mailboxCheck: a11y ?? checkA11y,
  };
}

/**
 * On "Set up a second factor", sets up codes sent by email for `person`: "Use codes sent by
 * email instead", "Send code", the code from the dev mailbox, "Submit". Asserts the confirmation
 * (the person is signed out; the first factor comes with 10 recovery codes) and returns the
 * recovery codes (or null when none were shown). Options: a11y (a check, or null for none) and
 * shot (a prefix for its names).
 */
export async function setUpEmailCodes(p, person, options = {}) {
  const { check, mailboxName, mailboxCheck } = namedCheck(options);
  await assertHeading(p, 'Set up a second factor');
  await check(p, 'emailed-codes-set-up');
  await clickLink(p, 'Use codes sent by email instead');
  await assertHeading(p, 'Use codes sent by email');
  assertPath(p, '/set-up/email', 'after "Use codes sent by email instead"');
  await check(p, 'emailed-codes-set-up-email');
  const code = await codeSentBy(p, person.email, () => clickButton(p, 'Send code'), mailboxName('emailed-codes-dev-mailbox-set-up'), mailboxCheck);
  await assertHeading(p, 'Use codes sent by email');
  await assertNoErrorSummary(p, 'after "Send code" on the email set-up page');
  await check(p, 'emailed-codes-set-up-email-sent');
  await fill(p, 'Code from the email', code);
  await clickButton(p, 'Submit');
  await assertHeading(p, 'Email codes set up');
  const codes = (await p.locator('ul.usher-recovery-codes').count()) > 0 ? await recoveryCodesOn(p, 'after setting up email codes') : null;
  await visible(linkOrButton(p, 'Sign in again'), 'a "Sign in again" link after setting up email codes', p);
  assert.equal(
    await p.getByRole('button', { name: 'Sign out', exact: true }).count(),
    0,
    `after setting up a factor the person is signed out, so no "Sign out" button should show.\n${await describePage(p)}`,
  );
  await check(p, 'emailed-codes-added');
  return codes;
}

/**
 * At "Enter the code we emailed you" (the second step of signing in, or of a reset link):
 * "Send code", the code from the dev mailbox, "Continue"; the browser then loads the next page.
 */
export async function giveEmailedCode(p, email, options = {}) {
  const { check, mailboxName, mailboxCheck } = namedCheck(options);
  await assertHeading(p, 'Enter the code we emailed you');
  await check(p, 'emailed-codes-second-factor');
  const code = await codeSentBy(p, email, () => clickButton(p, 'Send code'), mailboxName('emailed-codes-dev-mailbox-sign-in'), mailboxCheck);
  await assertHeading(p, 'Enter the code we emailed you');
  await assertNoErrorSummary(p, 'after "Send code" at the second step');
  await check(p, 'emailed-codes-second-factor-sent');
  await fill(p, 'Code from the email', code);
  await clickButton(p, 'Continue');
  await assertNoErrorSummary(p, `after entering the emailed code ${code}`);
}

/** Opens /sign-in, signs in as `person` with the password and an emailed code. */
export async function signInWithEmailCode(p, person, options = {}) {
  await p.goto('/sign-in');
  await submitSignIn(p, person.email, person.password);
  assertPath(p, '/sign-in/second-factor', `after the password of ${person.email}`);
  await giveEmailedCode(p, person.email, options);
}

/**
 * Signs `person` (who has no second factor yet) in for the first time: the password leads to
 * "Set up a second factor", codes sent by email are set up, and the person signs in again with
 * an emailed code. Returns the recovery codes.
 */
export async function firstSignInWithEmailCodes(p, person, options = {}) {
  await p.goto('/sign-in');
  await submitSignIn(p, person.email, person.password);
  assertPath(p, '/set-up', `the first sign-in of ${person.email}`);
  const codes = await setUpEmailCodes(p, person, options);
  await signInWithEmailCode(p, person, { ...options, a11y: null });
  return codes;
}

// ----- activation -----------------------------------------------------------------------------

export const ACTIVATION_SUBJECT = 'Activate your Usher account';

/** The activation link in the newest activation email to `email` (read from the dev mailbox on `p`). */
export async function activationLinkFor(p, email, baseUrl) {
  const mail = await waitForMessage(
    p,
    (m) => m.title === ACTIVATION_SUBJECT && m.to === email,
    `"${ACTIVATION_SUBJECT}" email to ${email}`,
    null,
    async () => {},
  );
  return tokenLinkIn(mail, baseUrl, 'activate', `the activation email to ${email}`);
}

/**
 * Activates `person` ({ email, e164, password }) from the emailed link, the short way: agrees to
 * the terms, confirms the mobile with the texted code and creates the password; ends on "Your
 * account is activated". No pages are checked with axe (activation.test.js does that).
 */
export async function activateAccount(p, person, baseUrl) {
  await p.goto(await activationLinkFor(p, person.email, baseUrl));
  await assertHeading(p, 'Terms and conditions');
  await p.getByRole('checkbox', { name: 'I agree to the terms and conditions', exact: true }).check();
  await clickButton(p, 'Continue');
  await assertHeading(p, 'Check your mobile number');
  const code = await codeSentBy(p, person.e164, () => clickButton(p, 'Confirm and send code'));
  await assertHeading(p, 'Enter the code we texted you');
  await fill(p, 'Code from the text message', code);
  await clickButton(p, 'Continue');
  await assertHeading(p, 'Create your password');
  await fill(p, 'Create a password', person.password);
  await fill(p, 'Confirm your password', person.password);
  await clickButton(p, 'Continue');
  await assertHeading(p, 'Your account is activated');
}
