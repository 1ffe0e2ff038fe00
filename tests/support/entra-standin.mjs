// A STAND-IN for Microsoft Entra ID, which cannot run here: npm oidc-provider set up to name
// users the way Entra's documents say it does (learn.microsoft.com/entra/identity-platform/,
// "ID token claims reference" and "Access token claims reference"):
//   - the issuer is https://login.microsoftonline.com/{tid}/v2.0 (the test maps that name to a
//     loopback address of its own, and the certificate is the test CA's);
//   - `sub` is pairwise: unique per user and application ID, so the ID token (for the login's
//     client) and the access token (for the cluster's API app, ENTRA_RESOURCE) carry two
//     different `sub`s for one user;
//   - `oid` (the user's object ID) and `tid` (the tenant) are the same in both, and are sent only
//     for the `profile` scope, as Entra does;
//   - access tokens are v1.0, as an API registered with default settings gets them: issuer
//     https://sts.windows.net/{tid}/, `aud` the API app, `ver` "1.0";
//   - a refresh answers with a new ID token (same pairwise `sub`) and a new access token.
// The endpoint paths are oidc-provider's under the issuer (Entra's are /{tid}/oauth2/v2.0/...):
// clients read them from discovery, so nothing depends on them.
//
// Settings: ENTRA_TENANT (GUID), ENTRA_ADDRESS (loopback address to listen on, port 443),
// ENTRA_TLS_CERT, ENTRA_TLS_KEY, ENTRA_RESOURCE (the API app's ID: `aud` of access tokens),
// ENTRA_TTL (seconds, tokens' lifetime), ENTRA_REFRESH_ACCESS_FOR=USER (a hostile provider: a
// refresh answers with USER's access token, same tenant).
// Prints one JSON line {"issuer", "jwks", "access_issuer"} once it listens.
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';
import express from 'express';
import Provider from 'oidc-provider';
import { SignJWT } from 'jose';

const env = process.env;
const tid = env.ENTRA_TENANT;
const resource = env.ENTRA_RESOURCE;
const ttl = Number(env.ENTRA_TTL || 300);
const issuer = `https://login.microsoftonline.com/${tid}/v2.0`;
const accessIssuer = `https://sts.windows.net/${tid}/`;

// Object IDs are GUIDs, stable per user in the tenant.
const users = {
  alice: { oid: '0f8a3c1e-5b2d-4e7a-9c1f-2a6b8d4e0c11', email: 'alice@example.com', groups: ['KubernetesAdministrators', 'developers'] },
  bob: { oid: '7d2e9b40-1c3a-4f58-b6e2-9a0c5d1f3e22', email: 'bob@example.com', groups: ['developers'] },
};

// Entra's `sub`: "unique to a particular application ID" (the salt keeps it opaque).
const pairwise = (accountId, appId) => crypto.createHash('sha256').update(`${tid}|${appId}|${accountId}|salt`).digest('base64url').slice(0, 43);

const findAccount = async (_ctx, id) => users[id] && {
  accountId: id,
  claims: async () => ({ sub: id, oid: users[id].oid, tid, preferred_username: users[id].email, name: id, email: users[id].email, email_verified: true, groups: users[id].groups }),
};

const app = express();
const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'kubernetes', application_type: 'native', token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    redirect_uris: ['http://localhost:8000'], subject_type: 'pairwise',
  }],
  subjectTypes: ['public', 'pairwise'],
  pairwiseIdentifier: async (_ctx, accountId, client) => pairwise(accountId, client.clientId),
  jwks: { keys: [{ ...key, kid: 'entra-standin-1', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: ['entra-standin-cookie-key'] },
  pkce: { required: () => true },
  issueRefreshToken: async () => true,
  conformIdTokenClaims: false,
  // `oid` and `tid` only for the `profile` scope, as Entra sends them.
  claims: { openid: ['sub'], profile: ['oid', 'tid', 'preferred_username', 'name'], email: ['email', 'email_verified'], groups: ['groups'] },
  findAccount,
  ttl: { IdToken: ttl, AccessToken: ttl, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600 },
  features: { devInteractions: { enabled: true } },
  routes: { authorization: '/oauth2/authorize', token: '/oauth2/token', jwks: '/discovery/keys' },
});

// Every access token of a login or refresh: Entra's v1.0 shape for the API app, with the
// user's `sub` pairwise for that app (not the login client's).
provider.use(async (ctx, next) => {
  await next();
  const grant = ctx.oidc?.params?.grant_type;
  if (!ctx.path.endsWith('/token') || !ctx.body?.access_token || !['authorization_code', 'refresh_token'].includes(grant)) return;
  const login = ctx.oidc.entities?.Account?.accountId;
  const who = (grant === 'refresh_token' && env.ENTRA_REFRESH_ACCESS_FOR) || login;
  const scopes = String(ctx.body.scope || '').split(' ');
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: accessIssuer, aud: resource, sub: pairwise(who, resource), iat: now, nbf: now, exp: now + ttl,
    appid: ctx.oidc.client.clientId, appidacr: '0', ver: '1.0', scp: 'user.read', upn: users[who].email, unique_name: users[who].email,
    groups: users[who].groups,
    ...(scopes.includes('profile') ? { oid: users[who].oid, tid } : {}),
  };
  const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'entra-standin-1', typ: 'JWT' }).sign(crypto.createPrivateKey({ key, format: 'jwk' }));
  ctx.body = { ...ctx.body, access_token: token };
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
provider.on('grant.error', (_ctx, err) => console.error('grant.error', err.message, err.error_description || ''));

app.use(`/${tid}/v2.0`, provider.callback());
const server = https.createServer({ cert: fs.readFileSync(env.ENTRA_TLS_CERT), key: fs.readFileSync(env.ENTRA_TLS_KEY) }, app);
server.listen(443, env.ENTRA_ADDRESS, () => {
  process.stdout.write(`${JSON.stringify({ issuer, access_issuer: accessIssuer, jwks: `https://${env.ENTRA_ADDRESS}/${tid}/v2.0/discovery/keys` })}\n`);
});
