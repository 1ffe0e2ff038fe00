// A real OpenID Provider for the integration tests: panva's oidc-provider (OpenID certified),
// shaped like a Keycloak realm: issuer http://127.0.0.1:PORT/realms/test, endpoints under
// /protocol/openid-connect/, a public client `kubernetes` with PKCE required, refresh tokens
// without offline_access, and `groups` in the ID token.
//
// Usage: node provider.mjs   (settings from the environment, see below)
// Prints one JSON line {"issuer": ..., "port": ...} on stdout once it listens.
// Test hooks outside the realm: GET /__test/counts (requests per path), POST /__test/reset.
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';
import express from 'express';
import Provider, { errors } from 'oidc-provider';
import { SignJWT } from 'jose';

const env = process.env;
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const idTokenTtl = Number(env.OP_ID_TOKEN_TTL || 300);
const accessTokenTtl = Number(env.OP_ACCESS_TOKEN_TTL || idTokenTtl);
const realm = env.OP_REALM || 'test';
// The client as examples/keycloak-realm.json registers it (a test keeps the two in step).
const client = JSON.parse(fs.readFileSync(new URL('./client.json', import.meta.url)));
// Misconfigurations on purpose, for setup's diagnostics.
if (env.OP_REDIRECT_URIS) client.redirect_uris = JSON.parse(env.OP_REDIRECT_URIS);
// OP_APPLICATION_TYPE=web: exact redirect URIs, https on localhost allowed (for the HTTPS
// loopback listener; native clients may not claim https://localhost).
if (env.OP_APPLICATION_TYPE) client.application_type = env.OP_APPLICATION_TYPE;
const pkceRequired = env.OP_PKCE_REQUIRED !== '0';
const noGroups = env.OP_NO_GROUPS === '1';
const emailVerified = env.OP_EMAIL_UNVERIFIED !== '1';
// OP_PKCE_UNANNOUNCED=1: the discovery document leaves out code_challenge_methods_supported, as
// older Keycloak releases and some other providers do.
const pkceUnannounced = env.OP_PKCE_UNANNOUNCED === '1';

// Clients for the other grants, each allowed only its own grant as a Keycloak client would be
// (Keycloak: "OAuth 2.0 Device Authorization Grant", "Direct access grants", "Service accounts").
const grantClients = [
  { client_id: 'kubernetes-device', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
  { client_id: 'kubernetes-password', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['password', 'refresh_token'], response_types: [], redirect_uris: [] },
  { client_id: 'robot', client_secret: 'robot-secret', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  // The login client of "one sign-in for many clusters": confidential, signs users in like
  // `kubernetes` and exchanges their access tokens for the clusters' audiences (RFC 8693), as
  // a Keycloak client with standard token exchange and Audience mappers does.
  // OP_NO_EXCHANGE=1: a provider without token exchange (its discovery lists no such grant).
  { ...client, client_id: 'kubernetes-exchange', client_secret: 'exchange-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token', ...(env.OP_NO_EXCHANGE === '1' ? [] : [TOKEN_EXCHANGE])] },
];
// The audiences the login client may exchange for (Keycloak: its Audience mappers).
const exchangeAudiences = (env.OP_EXCHANGE_AUDIENCES || 'cluster-a,cluster-b,cluster-c').split(',');
const passwords = { alice: 'secret', bob: 'secret' };

// Users of the realm, as an LDAP-backed Keycloak would present them.
const users = {
  alice: { email: 'alice@example.com', email_verified: true, groups: ['KubernetesAdministrators', 'developers'] },
  bob: { email: 'bob@example.com', email_verified: true, groups: ['developers'] },
};

const findAccount = async (_ctx, id) => users[id] && {
  accountId: id,
  claims: async () => {
    const { groups, ...rest } = users[id];
    return { sub: id, preferred_username: id, ...rest, email_verified: emailVerified, ...(noGroups ? {} : { groups }) };
  },
};

const counts = {};
const app = express();
app.use((req, _res, next) => {
  counts[req.path] = (counts[req.path] || 0) + 1;
  next();
});
// OP_DATE_SKEW_SECS=N: the provider's clock is N seconds ahead of this machine's (its Date
// header says so), for `doctor`'s clock check.
if (env.OP_DATE_SKEW_SECS) {
  app.use((_req, res, next) => {
    res.setHeader('Date', new Date(Date.now() + Number(env.OP_DATE_SKEW_SECS) * 1000).toUTCString());
    next();
  });
}
// OP_DISCOVERY=500|html|truncated|huge: a broken discovery document.
if (env.OP_DISCOVERY) {
  app.get(`/realms/${realm}/.well-known/openid-configuration`, (_req, res) => {
    switch (env.OP_DISCOVERY) {
      case '500': return res.status(500).type('text').send('Internal Server Error');
      case 'html': return res.type('html').send('<!doctype html><title>Sign in</title><p>Welcome</p>');
      case 'truncated': return res.type('json').send('{"issuer":"http://127.0.0.1/realms/test","authorization_endpoint":');
      default: return res.type('json').send(`{"padding":"${'a'.repeat(2 * 1024 * 1024)}"}`);
    }
  });
}

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

// One forged ID token per attack, from the genuine one's claims.
async function forge(genuine, mode, providerJwk) {
  const claims = JSON.parse(Buffer.from(genuine.split('.')[1], 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  const providerKey = crypto.createPrivateKey({ key: providerJwk, format: 'jwk' });
  const otherKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  let alg = 'RS256';
  let kid = env.OP_KID || 'test-key-1';
  let signingKey = providerKey;
  switch (mode) {
    case 'wrong_iss': claims.iss = 'https://evil.example.com/realms/test'; break;
    case 'wrong_aud': claims.aud = 'someone-else'; break;
    case 'multi_aud_no_azp': claims.aud = [claims.aud, 'someone-else']; delete claims.azp; break;
    case 'wrong_azp': claims.aud = [claims.aud, 'someone-else']; claims.azp = 'someone-else'; break;
    case 'expired': claims.iat = now - 900; claims.exp = now - 600; break;
    case 'future_iat': claims.iat = now + 3600; claims.exp = now + 7200; break;
    case 'wrong_nonce': claims.nonce = 'forged-nonce'; break;
    case 'other_key': signingKey = otherKey; break;
    case 'unknown_kid': signingKey = otherKey; kid = 'unknown-key'; break;
    case 'unlisted_alg': alg = 'RS512'; break;
    case 'alg_none':
      return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
    case 'hs256_public_key': {
      // The classic key-confusion attack: HMAC keyed with the provider's public key.
      const publicPem = crypto.createPublicKey(providerKey).export({ type: 'spki', format: 'pem' });
      const input = `${b64url({ alg: 'HS256', typ: 'JWT', kid })}.${b64url(claims)}`;
      return `${input}.${crypto.createHmac('sha256', publicPem).update(input).digest('base64url')}`;
    }
    default: throw new Error(`unknown OP_FORGE mode ${mode}`);
  }
  return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(signingKey);
}

// The x-* request headers of the last request per path (for --oidc-request-header); a
// request without any records none, so a test sees exactly what the last one sent.
const headers = {};
app.use((req, _res, next) => {
  const extra = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-')));
  headers[req.path] = extra;
  next();
});
app.get('/__test/counts', (_req, res) => res.json(counts));
app.get('/__test/headers', (_req, res) => res.json(headers));
app.post('/__test/reset', (_req, res) => {
  for (const k of Object.keys(counts)) delete counts[k];
  res.json({});
});

// OP_TLS_CERT and OP_TLS_KEY: serve HTTPS, as every real Keycloak does.
const tls = env.OP_TLS_CERT && { cert: fs.readFileSync(env.OP_TLS_CERT), key: fs.readFileSync(env.OP_TLS_KEY) };
const server = tls ? https.createServer(tls, app) : http.createServer(app);
server.listen(Number(env.OP_PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/realms/${realm}`;
  const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    // A native client's loopback redirect matches on any port (RFC 8252 §7.3).
    clients: [client, ...grantClients],
    jwks: { keys: [{ ...key, kid: env.OP_KID || 'test-key-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: ['test-cookie-key'] },
    pkce: { required: () => pkceRequired },
    // Keycloak gives public clients a refresh token without offline_access.
    issueRefreshToken: async () => true,
    // Keycloak puts profile claims and groups in the ID token; so do we.
    conformIdTokenClaims: false,
    claims: { openid: ['sub', 'email', 'email_verified', 'groups', 'preferred_username'], email: ['email', 'email_verified'] },
    findAccount,
    ttl: { IdToken: idTokenTtl, AccessToken: accessTokenTtl, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600 },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      // The robot's access token is a JWT for audience `kubernetes`, as Keycloak issues them,
      // so the API server can verify it like an ID token.
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, c) => (c.clientId === 'robot' ? 'urn:kubernetes' : undefined),
        useGrantedResource: () => false,
        getResourceServerInfo: () => ({ scope: '', audience: 'kubernetes', accessTokenFormat: 'jwt', accessTokenTTL: accessTokenTtl }),
      },
    },
    routes: {
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs',
      userinfo: '/protocol/openid-connect/userinfo',
      revocation: '/protocol/openid-connect/revoke',
      end_session: '/protocol/openid-connect/logout',
      device_authorization: '/protocol/openid-connect/auth/device',
    },
  });
  // OP_FORGE=MODE: every ID token the token endpoint returns is replaced by a forged one, for
  // the ID token validation tests (each mode one attack; see forge()).
  if (env.OP_FORGE) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path.endsWith('/token') && ctx.body && ctx.body.id_token) {
        ctx.body = { ...ctx.body, id_token: await forge(ctx.body.id_token, env.OP_FORGE, key) };
      }
    });
  }
  // OP_TOKEN_ERROR=500|CODE: the token endpoint fails that way.
  if (env.OP_TOKEN_ERROR) {
    provider.use(async (ctx, next) => {
      if (!ctx.path.endsWith('/token')) return next();
      if (env.OP_TOKEN_ERROR === '500') {
        ctx.status = 500;
        ctx.body = 'upstream database unavailable';
      } else {
        ctx.status = env.OP_TOKEN_ERROR === 'invalid_client' ? 401 : 400;
        ctx.body = { error: env.OP_TOKEN_ERROR, error_description: 'refused by the test provider' };
      }
    });
  }
  // Provider-side failures go to the provider's log (the test's provider.log), not only a 500.
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  provider.on('grant.error', (_ctx, err) => console.error('grant.error', err.message, err.error_description || ''));
  // Resource owner password credentials (RFC 6749 §4.3): oidc-provider leaves it out on
  // purpose, so this grant handler issues the same tokens a code exchange would.
  provider.registerGrantType('password', async (ctx) => {
    const { username, password } = ctx.oidc.params;
    if (!users[username] || passwords[username] !== password) throw new errors.InvalidGrant('invalid user credentials');
    const { client } = ctx.oidc;
    const grant = new provider.Grant({ clientId: client.clientId, accountId: username });
    grant.addOIDCScope('openid');
    grant.addOIDCClaims(['sub', 'email', 'email_verified', 'groups', 'preferred_username']);
    const grantId = await grant.save();
    const account = await findAccount(ctx, username);
    ctx.oidc.entity('Account', account);
    ctx.oidc.entity('Grant', grant);
    const common = { accountId: username, client, grantId, gty: 'password', scope: 'openid' };
    const at = new provider.AccessToken(common);
    const accessToken = await at.save();
    const rt = new provider.RefreshToken({ ...common, rotations: 0, authTime: Math.floor(Date.now() / 1000) });
    const refreshToken = await rt.save();
    const idToken = new provider.IdToken(await account.claims('id_token', 'openid', {}, []), { ctx });
    idToken.scope = 'openid';
    ctx.body = {
      access_token: accessToken, token_type: 'Bearer', expires_in: at.expiration, scope: 'openid',
      id_token: await idToken.issue({ use: 'idtoken' }), refresh_token: refreshToken,
    };
  }, ['username', 'password', 'scope']);
  // RFC 8693 token exchange as Keycloak's standard token exchange answers it: the client's own
  // live access token in, a JWT access token for one of its audiences out (claims of the
  // user, azp the client), with Keycloak's error words.
  // OP_EXCHANGE_FORGE=extra_aud|other_key|expired: the exchanged token is wrong that way.
  const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
  if (env.OP_NO_EXCHANGE !== '1') provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { subject_token: subject, subject_token_type: subjectType, audience } = ctx.oidc.params;
    const refuse = (description) => {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: description };
    };
    if (subjectType !== ACCESS_TOKEN_TYPE) return refuse("Parameter 'subject_token' supports access tokens only");
    const at = subject && await provider.AccessToken.find(subject);
    if (!at || at.isExpired || at.clientId !== ctx.oidc.client.clientId) return refuse('Invalid token');
    if (!exchangeAudiences.includes(audience)) return refuse(`Requested audience not available: ${audience}`);
    const account = await findAccount(ctx, at.accountId);
    const { sub, email, email_verified: verified, groups } = await account.claims('id_token', 'openid', {}, []);
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: issuer, aud: audience, azp: ctx.oidc.client.clientId, sub, iat: now, exp: now + accessTokenTtl, typ: 'Bearer', email, email_verified: verified, groups };
    let signing = crypto.createPrivateKey({ key, format: 'jwk' });
    switch (env.OP_EXCHANGE_FORGE) {
      case 'extra_aud': claims.aud = [audience, 'cluster-z']; break;
      case 'other_key': signing = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey; break;
      case 'expired': claims.iat = now - 900; claims.exp = now - 600; break;
      default: break;
    }
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: env.OP_KID || 'test-key-1', typ: 'JWT' }).sign(signing);
    ctx.body = { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: accessTokenTtl };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope']);
  // A short polling interval keeps the device-grant tests quick (the default is 5 s).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path.endsWith('/auth/device') && ctx.method === 'POST' && ctx.body && ctx.body.device_code) {
      ctx.body = { ...ctx.body, interval: Number(env.OP_DEVICE_INTERVAL || 1) };
    }
  });
  if (pkceUnannounced) {
    // Serve discovery from the provider's own document, minus the PKCE methods.
    app.get(`/realms/${realm}/.well-known/openid-configuration`, async (req, res, next) => {
      if (req.headers['x-test-inner']) return next();
      const inner = await fetch(`${issuer}/.well-known/openid-configuration`, { headers: { 'x-test-inner': '1' } });
      const doc = await inner.json();
      delete doc.code_challenge_methods_supported;
      res.json(doc);
    });
  }
  // No body parser in front of the provider: it reads request bodies itself.
  app.use(`/realms/${realm}`, provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});
