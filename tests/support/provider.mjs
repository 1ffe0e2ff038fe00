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
import Provider from 'oidc-provider';

const env = process.env;
const idTokenTtl = Number(env.OP_ID_TOKEN_TTL || 300);
const accessTokenTtl = Number(env.OP_ACCESS_TOKEN_TTL || idTokenTtl);
const realm = env.OP_REALM || 'test';
// The client as examples/keycloak-realm.json registers it (a test keeps the two in step).
const client = JSON.parse(fs.readFileSync(new URL('./client.json', import.meta.url)));
// Misconfigurations on purpose, for setup's diagnostics.
if (env.OP_REDIRECT_URIS) client.redirect_uris = JSON.parse(env.OP_REDIRECT_URIS);
const pkceRequired = env.OP_PKCE_REQUIRED !== '0';
const noGroups = env.OP_NO_GROUPS === '1';
const emailVerified = env.OP_EMAIL_UNVERIFIED !== '1';
// OP_PKCE_UNANNOUNCED=1: the discovery document leaves out code_challenge_methods_supported, as
// older Keycloak releases and some other providers do.
const pkceUnannounced = env.OP_PKCE_UNANNOUNCED === '1';

// Users of the realm, as an LDAP-backed Keycloak would present them.
const users = {
  alice: { email: 'alice@example.com', email_verified: true, groups: ['KubernetesAdministrators', 'developers'] },
  bob: { email: 'bob@example.com', email_verified: true, groups: ['developers'] },
};

const counts = {};
const app = express();
app.use((req, _res, next) => {
  counts[req.path] = (counts[req.path] || 0) + 1;
  next();
});
app.get('/__test/counts', (_req, res) => res.json(counts));
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
    clients: [client],
    jwks: { keys: [{ ...key, kid: env.OP_KID || 'test-key-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: ['test-cookie-key'] },
    pkce: { required: () => pkceRequired },
    // Keycloak gives public clients a refresh token without offline_access.
    issueRefreshToken: async () => true,
    // Keycloak puts profile claims and groups in the ID token; so do we.
    conformIdTokenClaims: false,
    claims: { openid: ['sub', 'email', 'email_verified', 'groups', 'preferred_username'], email: ['email', 'email_verified'] },
    findAccount: async (_ctx, id) => users[id] && {
      accountId: id,
      claims: async () => {
        const { groups, ...rest } = users[id];
        return { sub: id, preferred_username: id, ...rest, email_verified: emailVerified, ...(noGroups ? {} : { groups }) };
      },
    },
    ttl: { IdToken: idTokenTtl, AccessToken: accessTokenTtl, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600 },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      deviceFlow: { enabled: true },
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
