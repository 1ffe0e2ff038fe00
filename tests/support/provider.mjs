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

// Hosted providers' documented quirks, one switch each (tests/suite/hosted.rs cites the documents):
//   OP_REFRESH_TOKEN_FOR=offline_access       a refresh token only when the authorization asked
//                                             for the offline_access scope (Entra ID, Dex)
//   OP_REFRESH_TOKEN_FOR=access_type_offline  only when it carried access_type=offline (Google)
//   OP_REFRESH_KEEPS_TOKEN=1  a refresh answers without a refresh_token; the one presented stays
//                             valid (Google, AWS Cognito)
//   OP_GROUPS_CLAIM=NAME      the ID token carries the groups as NAME (Cognito: cognito:groups,
//                             GitLab: groups_direct)
//   OP_GROUPS_SCOPE=1         groups only when the `groups` scope was asked for (Dex)
const refreshTokenFor = env.OP_REFRESH_TOKEN_FOR;
const refreshKeepsToken = env.OP_REFRESH_KEEPS_TOKEN === '1';
const groupsClaim = env.OP_GROUPS_CLAIM || 'groups';
const groupsScope = env.OP_GROUPS_SCOPE === '1';

// Clients for the other grants, each allowed only its own grant as a Keycloak client would be
// (Keycloak: "OAuth 2.0 Device Authorization Grant", "Direct access grants", "Service accounts").
const grantClients = [
  { client_id: 'kubernetes-device', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
  { client_id: 'kubernetes-password', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['password', 'refresh_token'], response_types: [], redirect_uris: [] },
  { client_id: 'robot', client_secret: 'robot-secret', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  // A confidential client limited to client_secret_post, as Auth0, Zitadel and Authelia let
  // an admin set one while their discovery lists both methods: HTTP Basic gets 401.
  { client_id: 'kubernetes-post', client_secret: 'post-secret', token_endpoint_auth_method: 'client_secret_post', application_type: 'native', grant_types: ['authorization_code', 'refresh_token', 'password', 'client_credentials'], response_types: ['code'], redirect_uris: client.redirect_uris },
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

// OP_ALICE_CLAIMS=JSON: claims merged into alice's, as a hostile provider (or an LDAP attribute
// anyone may set) would put them in her ID token: control characters in groups or email.
if (env.OP_ALICE_CLAIMS) Object.assign(users.alice, JSON.parse(env.OP_ALICE_CLAIMS));

const findAccount = async (_ctx, id) => users[id] && {
  accountId: id,
  claims: async () => {
    const { groups, ...rest } = users[id];
    return { sub: id, preferred_username: id, ...rest, email_verified: emailVerified, ...(noGroups ? {} : { [groupsClaim]: groups }) };
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
// OP_NO_DATE=1: no Date header on any response (some proxies strip it).
if (env.OP_NO_DATE === '1') {
  app.use((_req, res, next) => {
    res.sendDate = false;
    next();
  });
}
// OP_AUTH_ERROR_DESCRIPTION=TEXT: a hostile provider answers every authorization request with
// an error whose description is TEXT (terminal escape sequences, for instance).
if (env.OP_AUTH_ERROR_DESCRIPTION) {
  app.get(`/realms/${realm}/protocol/openid-connect/auth`, (req, res) => {
    const target = new URL(req.query.redirect_uri);
    target.searchParams.set('error', 'access_denied');
    target.searchParams.set('error_description', env.OP_AUTH_ERROR_DESCRIPTION);
    target.searchParams.set('state', req.query.state);
    res.redirect(target.toString());
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
    // aud is ours alone, but the token was authorized for another client (OIDC Core 3.1.3.7).
    case 'azp_other': claims.azp = 'someone-else'; break;
    // A validly signed token for another user (with OP_FORGE_GRANT=refresh_token: a refresh
    // that changes who is signed in).
    case 'other_sub': claims.sub = 'mallory'; claims.email = 'mallory@example.com'; claims.preferred_username = 'mallory'; break;
    // Issued and expired an hour ago (with OP_NO_DATE: nothing but iat tells the time).
    case 'expired_hour': claims.iat = now - 3900; claims.exp = now - 3600; break;
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
// Every request in which a client authenticates (token, revocation, device authorization),
// as the provider received it: how the client authenticated (basic, post or none), the body's
// parameter names (never their values, apart from grant_type and scope) and the status.
const clientRequests = [];
app.get('/__test/client_requests', (_req, res) => res.json(clientRequests));
app.get('/__test/counts', (_req, res) => res.json(counts));
app.get('/__test/headers', (_req, res) => res.json(headers));
app.post('/__test/reset', (_req, res) => {
  for (const k of Object.keys(counts)) delete counts[k];
  clientRequests.length = 0;
  res.json({});
});

// OP_TLS_CERT and OP_TLS_KEY: serve HTTPS, as every real Keycloak does.
const tls = env.OP_TLS_CERT && { cert: fs.readFileSync(env.OP_TLS_CERT), key: fs.readFileSync(env.OP_TLS_KEY) };
const server = tls ? https.createServer(tls, app) : http.createServer(app);
// OP_HOST=ADDRESS: listen on another address of this machine than 127.0.0.1 (a provider that is
// not on loopback, which proxies carry), and name the issuer after it.
const host = env.OP_HOST || '127.0.0.1';
server.listen(Number(env.OP_PORT || 0), host, () => {
  const { port } = server.address();
  const issuer = `${tls ? 'https' : 'http'}://${host}:${port}/realms/${realm}`;
  const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    // A native client's loopback redirect matches on any port (RFC 8252 §7.3).
    clients: [client, ...grantClients],
    jwks: { keys: [{ ...key, kid: env.OP_KID || 'test-key-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: ['test-cookie-key'] },
    pkce: { required: () => pkceRequired },
    // Keycloak gives public clients a refresh token without offline_access.
    // OP_REFRESH_NEEDS_OFFLINE_ACCESS=1: only with it, as Hydra, Dex and Entra ID do.
    issueRefreshToken: env.OP_REFRESH_NEEDS_OFFLINE_ACCESS === '1'
      ? async (_ctx, _client, code) => code.scopes.has('offline_access')
      : async () => true,
    // Keycloak puts profile claims and groups in the ID token; so do we.
    conformIdTokenClaims: false,
    claims: groupsScope
      ? { openid: ['sub', 'email', 'email_verified', 'preferred_username'], email: ['email', 'email_verified'], groups: [groupsClaim] }
      : { openid: ['sub', 'email', 'email_verified', groupsClaim, 'preferred_username'], email: ['email', 'email_verified'] },
    // The hosted providers' refresh quirks (OP_REFRESH_TOKEN_FOR, OP_REFRESH_KEEPS_TOKEN above).
    ...(refreshTokenFor ? { issueRefreshToken: async (_ctx, _client, code) => code.scopes.has('offline_access') } : {}),
    ...(refreshKeepsToken ? { rotateRefreshToken: false } : {}),
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
  provider.use(async (ctx, next) => {
    await next();
    const endpoint = ['/token', '/revoke', '/auth/device'].find((e) => ctx.path.endsWith(e));
    if (!endpoint || ctx.method !== 'POST') return;
    const body = (ctx.oidc && ctx.oidc.body) || {};
    const auth = /^basic /i.test(ctx.headers.authorization || '') ? 'basic' : (body.client_secret ? 'post' : 'none');
    clientRequests.push({ endpoint, grant_type: body.grant_type, scope: body.scope, auth, params: Object.keys(body).filter((k) => k !== 'client_secret').sort(), status: ctx.status });
  });
  // oidc-provider takes HTTP Basic from a client registered for client_secret_post too; the
  // providers that limit a client to client_secret_post answer 401 invalid_client.
  provider.use(async (ctx, next) => {
    const basic = /^basic (.*)$/i.exec(ctx.headers.authorization || '');
    const endpoint = ['/token', '/revoke', '/auth/device'].some((e) => ctx.path.endsWith(e));
    if (endpoint && basic) {
      const id = decodeURIComponent(Buffer.from(basic[1], 'base64').toString().split(':')[0]);
      if (id === 'kubernetes-post') {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', `Basic realm="${issuer}"`);
        ctx.body = { error: 'invalid_client', error_description: 'client authentication failed: this client uses client_secret_post' };
        return;
      }
    }
    await next();
  });
  // As Keycloak: the client credentials grant with scope openid also returns an ID token for
  // the client's service account (its audience is the client).
  provider.use(async (ctx, next) => {
    await next();
    const body = (ctx.oidc && ctx.oidc.body) || {};
    if (!ctx.path.endsWith('/token') || body.grant_type !== 'client_credentials' || ctx.status !== 200) return;
    if (!String(body.scope || '').split(' ').includes('openid')) return;
    const idToken = new provider.IdToken({ sub: ctx.oidc.client.clientId, preferred_username: `service-account-${ctx.oidc.client.clientId}` }, { ctx });
    idToken.scope = 'openid';
    ctx.body = { ...ctx.body, id_token: await idToken.issue({ use: 'idtoken' }) };
  });
  // OP_REFRESH_ERROR=DESCRIPTION: every refresh is refused with invalid_grant and this
  // description, as Keycloak refuses a disabled user's ("User disabled").
  if (env.OP_REFRESH_ERROR) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path.endsWith('/token') && ctx.oidc && ctx.oidc.body && ctx.oidc.body.grant_type === 'refresh_token') {
        ctx.status = 400;
        ctx.body = { error: 'invalid_grant', error_description: env.OP_REFRESH_ERROR };
      }
    });
  }
  // With OP_REFRESH_NEEDS_OFFLINE_ACCESS, offline_access is honoured as Hydra honours it:
  // oidc-provider would drop it from an authorization request without prompt=consent.
  if (env.OP_REFRESH_NEEDS_OFFLINE_ACCESS === '1') {
    provider.use(async (ctx, next) => {
      if (ctx.path.endsWith('/protocol/openid-connect/auth') && String(ctx.query.scope || '').split(' ').includes('offline_access') && !ctx.query.prompt) {
        ctx.querystring = `${ctx.querystring}&prompt=consent`;
      }
      await next();
    });
  }
  // OP_FORGE=MODE: every ID token the token endpoint returns is replaced by a forged one, for
  // the ID token validation tests (each mode one attack; see forge()).
  if (env.OP_FORGE) {
    provider.use(async (ctx, next) => {
      await next();
      const grant = ctx.oidc && ctx.oidc.params && ctx.oidc.params.grant_type;
      if (env.OP_FORGE_GRANT && grant !== env.OP_FORGE_GRANT) return;
      if (ctx.path.endsWith('/token') && ctx.body && ctx.body.id_token) {
        ctx.body = { ...ctx.body, id_token: await forge(ctx.body.id_token, env.OP_FORGE, key) };
      }
    });
  }
  if (refreshTokenFor) {
    // oidc-provider keeps offline_access only with prompt=consent (OpenID Connect Core 11); the
    // hosted providers emulated here need no prompt, so the request gets it here. Google knows
    // no offline_access scope: there access_type=offline stands for it.
    provider.use(async (ctx, next) => {
      if (ctx.method === 'GET' && ctx.path.endsWith('/protocol/openid-connect/auth')) {
        const query = { ...ctx.query };
        const scopes = String(query.scope || '').split(' ').filter((x) => x && x !== 'offline_access');
        const offline = refreshTokenFor === 'access_type_offline'
          ? query.access_type === 'offline'
          : String(query.scope || '').split(' ').includes('offline_access');
        if (offline) {
          scopes.push('offline_access');
          query.prompt = 'consent';
        }
        query.scope = scopes.join(' ');
        ctx.query = query;
      }
      await next();
    });
  }
  if (refreshKeepsToken) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path.endsWith('/token') && ctx.oidc?.params?.grant_type === 'refresh_token' && ctx.body?.refresh_token) {
        const { refresh_token: _kept, ...rest } = ctx.body;
        ctx.body = rest;
      }
    });
  }
  // Token answers of other providers, one switch each (tests/suite/trust_attacks.rs):
  //   OP_JWT_ACCESS_TOKENS=1        every access token of a login or refresh is a JWT for audience
  //                                 `kubernetes` with the user's sub and email, signed with the
  //                                 provider's key (Keycloak's are such JWTs), for
  //                                 --oidc-use-access-token through the API server stand-in
  //   OP_REFRESH_NO_ID_TOKEN=1      no id_token in any refresh answer, as OpenID Connect Core 12.2
  //                                 allows (PyPI oidc-provider-mock, some Entra ID and F5 set-ups)
  //   OP_REFRESH_ID_TOKEN_SCOPE=1   an id_token only when the refresh asks for `openid` in its
  //                                 `scope` (Entra ID's v2 endpoint wants `scope` on refresh)
  //   OP_REFRESH_ACCESS_FOR=USER    a refresh answers the login's ID token with USER's access
  //                                 token, such a JWT (a hostile provider)
  if (env.OP_JWT_ACCESS_TOKENS === '1' || env.OP_REFRESH_NO_ID_TOKEN === '1' || env.OP_REFRESH_ID_TOKEN_SCOPE === '1' || env.OP_REFRESH_ACCESS_FOR) {
    provider.use(async (ctx, next) => {
      await next();
      const grant = ctx.oidc?.params?.grant_type;
      if (!ctx.path.endsWith('/token') || !ctx.body?.access_token || !['authorization_code', 'refresh_token'].includes(grant)) return;
      const refresh = grant === 'refresh_token';
      const asked = String(ctx.oidc.params.scope || '').split(' ').includes('openid');
      const login = ctx.oidc.entities?.Account?.accountId
        || (ctx.body.id_token && JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url')).sub);
      if (refresh && (env.OP_REFRESH_NO_ID_TOKEN === '1' || (env.OP_REFRESH_ID_TOKEN_SCOPE === '1' && !asked))) {
        const { id_token: _dropped, ...rest } = ctx.body;
        ctx.body = rest;
      }
      const sub = (refresh && env.OP_REFRESH_ACCESS_FOR) || (env.OP_JWT_ACCESS_TOKENS === '1' && login);
      if (sub) {
        const now = Math.floor(Date.now() / 1000);
        const claims = { iss: issuer, sub, aud: 'kubernetes', client_id: ctx.oidc.client.clientId, scope: 'openid', iat: now, exp: now + accessTokenTtl, jti: crypto.randomUUID(), email: users[sub]?.email || `${sub}@example.org` };
        const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: env.OP_KID || 'test-key-1', typ: 'at+jwt' }).sign(crypto.createPrivateKey({ key, format: 'jwk' }));
        ctx.body = { ...ctx.body, access_token: token };
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
        ctx.body = { error: env.OP_TOKEN_ERROR, error_description: env.OP_ERROR_DESCRIPTION || 'refused by the test provider' };
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
  // OP_EXCHANGE_FORGE=extra_aud|other_key|expired|other_sub: the exchanged token is wrong that
  // way (other_sub: validly signed, for mallory while the login is another user's).
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
      case 'other_sub': claims.sub = 'mallory'; claims.email = 'mallory@example.org'; break;
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
      // OP_DEVICE_INTERVAL_RAW: the interval as written, past what a JavaScript number holds
      // exactly (18446744073709551615, u64::MAX: a hostile provider's).
      if (env.OP_DEVICE_INTERVAL_RAW) {
        ctx.type = 'application/json';
        ctx.body = JSON.stringify(ctx.body).replace(/"interval":[0-9]+/, `"interval":${env.OP_DEVICE_INTERVAL_RAW}`);
      }
    }
    // OP_DEVICE_SLOW_DOWN=1: every poll of the device grant is told to slow down.
    if (env.OP_DEVICE_SLOW_DOWN === '1' && ctx.oidc?.params?.grant_type === 'urn:ietf:params:oauth:grant-type:device_code') {
      ctx.status = 400;
      ctx.body = { error: 'slow_down', error_description: 'polling too fast' };
    }
  });
  // OP_DISCOVERY_PATCH=JSON: the discovery document with these fields replaced (an endpoint
  // moved elsewhere: plain http, or an impostor's).
  if (env.OP_DISCOVERY_PATCH) {
    app.get(`/realms/${realm}/.well-known/openid-configuration`, async (req, res, next) => {
      if (req.headers['x-test-inner']) return next();
      const inner = await fetch(`${issuer}/.well-known/openid-configuration`, { headers: { 'x-test-inner': '1' } });
      res.json({ ...(await inner.json()), ...JSON.parse(env.OP_DISCOVERY_PATCH) });
    });
  }
  // OP_DISCOVERY_POST_ONLY=1: the discovery document lists client_secret_post as the only
  // client authentication for the token endpoint.
  const postOnly = env.OP_DISCOVERY_POST_ONLY === '1';
  if (pkceUnannounced || postOnly) {
    // Serve discovery from the provider's own document, minus the PKCE methods.
    app.get(`/realms/${realm}/.well-known/openid-configuration`, async (req, res, next) => {
      if (req.headers['x-test-inner']) return next();
      const inner = await fetch(`${issuer}/.well-known/openid-configuration`, { headers: { 'x-test-inner': '1' } });
      const doc = await inner.json();
      if (pkceUnannounced) delete doc.code_challenge_methods_supported;
      if (postOnly) doc.token_endpoint_auth_methods_supported = ['client_secret_post'];
      res.json(doc);
    });
  }
  // No body parser in front of the provider: it reads request bodies itself.
  app.use(`/realms/${realm}`, provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});
