// Pieces the OpenID Connect journeys share (oidc.test.js, logout.test.js): the first operator set
// up with an authenticator app whose codes are computed here (RFC 6238), and the usher command
// line run against a journey's server.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import {
  advanceClock,
  assertHeading,
  base32Decode,
  clickButton,
  clockNow,
  codeSentBy,
  fill,
  freePort,
  normalise,
  printedSetupLink,
  recoveryCodesOn,
  repoRoot,
  submitSetupForm,
  totpCode,
} from './helpers.js';

export const usherBin = () =>
  process.env.USHER_BIN ? path.resolve(repoRoot, process.env.USHER_BIN) : path.join(repoRoot, 'target', 'debug', 'usher');

/** Runs the usher binary against the journey's server (same data directory and address). */
export function usherCli(usher, args) {
  const bin = usherBin();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, USHER_DATA_DIR: usher.dataDir, USHER_PUBLIC_BASE_URL: usher.baseUrl, USHER_LOG_LEVEL: 'warn', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`usher ${args.join(' ')} exited ${code}:\n${out}\n${err}`)),
    );
  });
}

/** Registers a service with `usher clients add --json` and returns { id, secret, redirect, label }. */
export async function addClient(usher, { label, redirect, extra = [] }) {
  const out = await usherCli(usher, ['clients', 'add', '--name', label, '--redirect-uri', redirect, '--json', ...extra]);
  const made = JSON.parse(out.trim().split('\n').pop());
  return { id: made.client_id, secret: made.client_secret, redirect, label, issuer: made.issuer };
}

/**
 * From the printed set-up link, sets up the first operator `person` with an authenticator app
 * and keeps the recovery codes; returns the app's key as typed (base32).
 */
export async function setUpOperatorWithApp(page, usher, person) {
  await page.goto(await printedSetupLink(usher));
  await submitSetupForm(page, person);
  const code = await codeSentBy(page, person.email, () => clickButton(page, 'Send code'));
  await assertHeading(page, 'Enter the code we emailed you');
  await fill(page, 'Code from the email', code);
  await clickButton(page, 'Continue');
  await assertHeading(page, 'Scan the QR code');
  await page.locator('details summary', { hasText: 'I cannot scan the QR code' }).click();
  const keyText = normalise(await page.locator('#secret-key').innerText());
  const { unix } = await clockNow(usher.baseUrl);
  await fill(page, 'Code from your authenticator app', totpCode(base32Decode(keyText), unix));
  await clickButton(page, 'Save device');
  await assertHeading(page, 'Authenticator app added');
  await recoveryCodesOn(page, 'after adding the app');
  return keyText;
}

/** The app code for the server's clock, after moving the clock on to a time step not used yet. */
export async function nextAppCode(baseUrl, keyText) {
  const { unix } = await advanceClock(baseUrl, '30s');
  return totpCode(base32Decode(keyText), unix);
}

/**
 * Registers and starts the example court service (examples/court-service, built beside usher)
 * on a free port, with the `clients add` options `extra(base)` gives; returns { base, stop }.
 */
export async function startCourtService(usher, extra = () => []) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const out = await usherCli(usher, ['clients', 'add', '--name', 'Court platform (example)', '--redirect-uri', `${base}/callback`, ...extra(base), '--json']);
  const registration = path.join(usher.dataDir, `court-service-${port}.json`);
  fs.writeFileSync(registration, out);
  const bin = path.join(path.dirname(usherBin()), 'court-service');
  const service = spawn(bin, [], {
    env: { ...process.env, COURT_CLIENT: registration, COURT_LISTEN: `127.0.0.1:${port}`, COURT_BASE_URL: base },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    service.stdout.on('data', (d) => String(d).includes('is running') && resolve());
    service.on('exit', (code) => reject(new Error(`court-service exited ${code} (cargo build -p court-service)`)));
  });
  return { base, stop: () => service.kill() };
}
