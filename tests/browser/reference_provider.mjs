// A known-good OpenID Connect provider to calibrate our test harnesses against: npm
// oidc-provider (a certified provider), set up as Usher is (code flow only, PKCE S256 for every
// client, ES256 ID tokens, pairwise subjects, rotating refresh tokens, introspection and
// revocation for a client's own tokens, private_key_jwt with replay detection), with:
//   - clients registered by dynamic registration (POST /reg), as the harness adds them;
//   - an interaction that signs one fixed person in at once (password and app code) and grants
//     what was asked, so that no page needs answering;
//   - a test clock like Usher's (GET/POST /api/v1/test-clock), by moving Date.now;
//   - back-channel and RP-initiated logout, and POST /test/sign (test-only) that signs any claims
//     with its key, so that the logout receiver's refusals are checked with well-signed tokens.
//
// Not a test itself: tests/oidc/calibrate runs it under both harnesses.
//   node tests/browser/reference_provider.mjs PORT     prints "ready ISSUER" when listening

import crypto from 'node:crypto';
import http from 'node:http';

import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 0);
const issuer = `http://127.0.0.1:${port}`;

// The test clock: every read of the time goes through Date.now.
let offsetMs = 0;
const realNow = Date.now;
Date.now = () => realNow() + offsetMs;
const spanMs = (text) => {
  const m = /^(\d+)(s|m|h|d)$/.exec(String(text ?? ''));
  if (!m) return null;
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
};

const PERSON = { sub: 'olive', email: 'olive.schemathesis@example.org', name: 'Olive Operator' };
const pairwiseSecret = crypto.randomBytes(32);

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'reference-1', use: 'sig', alg: 'ES256' };
// An RSA key for the clients that ask for RS256 or PS256, as Usher makes one for them.
const { privateKey: rsaKey } = await generateKeyPair('PS256', { extractable: true, modulusLength: 2048 });
const rsaSigningKey = { ...(await exportJWK(rsaKey)), kid: 'reference-rsa', use: 'sig' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey, rsaSigningKey] },
  responseTypes: ['code'],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'organisation', 'offline_access'],
  claims: { acr: null, amr: null, auth_time: null, sid: null, openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], organisation: ['role'] },
  subjectTypes: ['public', 'pairwise'],
  pairwiseIdentifier: (ctx, accountId, client) =>
    crypto.createHmac('sha256', pairwiseSecret).update(`${client.sectorIdentifier}\0${accountId}`).digest('base64url'),
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code', 'refresh_token'] },
  issueRefreshToken: () => true,
  rotateRefreshToken: () => true,
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    introspection: {
      enabled: true,
      // As Usher: a client may look only at its own tokens.
      allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
    },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ ...PERSON, sub: id, email_verified: true, role: 'operator' }),
  }),
  // Its outgoing requests refuse loopback addresses (SSRF protection); the logout receiver of the
  // calibration listens on 127.0.0.1, so that one check is lifted here.
  fetch: (url, options) => {
    delete options.dispatcher;
    return fetch(url, options);
  },
  ttl: { AuthorizationCode: 60, AccessToken: 300, IdToken: 300, RefreshToken: 43200, Interaction: 600, Session: 43200, Grant: 43200 },
});

// The interaction: sign the person in (password and app code) and grant what the client asked.
provider.use(async (ctx, next) => {
  if (ctx.path === '/api/v1/test-clock') {
    if (ctx.method === 'POST') {
      let body = '';
      for await (const chunk of ctx.req) body += chunk;
      const ms = spanMs(JSON.parse(body || '{}').advance);
      if (ms === null) {
        ctx.status = 400;
        ctx.body = { error: 'advance must be like 30s, 2m, 1h' };
        return;
      }
      offsetMs += ms;
    }
    ctx.body = { unix: Math.floor(Date.now() / 1000) };
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/test/sign') {
    let body = '';
    for await (const chunk of ctx.req) body += chunk;
    const { claims, typ } = JSON.parse(body || '{}');
    ctx.body = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: signingKey.kid, typ }).sign(privateKey);
    return;
  }
  if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const accountId = details.session?.accountId ?? PERSON.sub;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    const result = { consent: { grantId } };
    if (details.prompt.name === 'login') {
      result.login = { accountId, amr: ['pwd', 'otp', 'mfa'], acr: 'urn:usher:acr:mfa' };
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.respond = false;
    return;
  }
  await next();
});

provider.on('backchannel.error', (ctx, err) => console.error(`back-channel logout failed: ${err.message}`));

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
