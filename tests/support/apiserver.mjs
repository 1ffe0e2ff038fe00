// A small HTTPS stand-in for kube-apiserver. client-go sends exec tokens only over TLS, so it
// serves the certificate given to it. Like an apiserver with --oidc-* flags, it verifies each
// bearer token against the issuer's JWKS (signature, iss, aud) and maps claims to a user:
// username from OIDC_USERNAME_CLAIM (default email), groups from `groups` with OIDC_GROUPS_PREFIX.
//
// Usage: node apiserver.mjs CERT KEY ISSUER CLIENT_ID[,CLIENT_ID...]
// Prints {"port": N} once listening. GET /__test/tokens lists the bearer tokens seen.
import https from 'node:https';
import fs from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [cert, key, issuer, audienceList] = process.argv.slice(2);
// Comma-separated: like AuthenticationConfiguration's `audiences` with audienceMatchPolicy
// MatchAny (one client per grant in the test realm).
const audience = audienceList.split(',');
const usernameClaim = process.env.OIDC_USERNAME_CLAIM || 'email';
const groupsPrefix = process.env.OIDC_GROUPS_PREFIX ?? 'oidc:';
// --oidc-groups-claim (Cognito: cognito:groups, GitLab: groups_direct).
const groupsClaim = process.env.OIDC_GROUPS_CLAIM || 'groups';
// OIDC_JWKS_URL: a provider not shaped like Keycloak (Hydra, zitadel) serves its keys elsewhere.
const jwks = createRemoteJWKSet(new URL(process.env.OIDC_JWKS_URL || `${issuer}/protocol/openid-connect/certs`));
const seen = [];
// A failure inside one request must not take the whole server down (kubectl would see a reset
// connection with no reason): log it, where the tests print this server's log on failure.
process.on('unhandledRejection', (e) => console.error('unhandled rejection:', e));
process.on('uncaughtException', (e) => console.error('uncaught exception:', e));

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, async (req, res) => {
  if (req.url === '/__test/tokens') return json(res, 200, seen);
  const auth = req.headers.authorization || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
  let user;
  try {
    if (!token) throw new Error('no bearer token');
    seen.push(token);
    // jose refuses a token whose exp has passed by this server's (real) clock, with no
    // tolerance by default, as kube-apiserver does: tests/suite/clock.rs relies on it.
    const { payload } = await jwtVerify(token, jwks, { issuer, audience });
    // A robot's token (client credentials) has no email: name it after its subject, as an
    // AuthenticationConfiguration would with `claims.?email.orValue('robot:' + claims.sub)`.
    const username = payload[usernameClaim] ?? `robot:${payload.sub}`;
    user = { username: String(username), groups: (payload[groupsClaim] || []).map((g) => groupsPrefix + g).concat(['system:authenticated']) };
  } catch (e) {
    return json(res, 401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `Unauthorized: ${e.message}`, reason: 'Unauthorized', code: 401 });
  }
  let body = '';
  for await (const chunk of req) body += chunk;
  if (req.method === 'GET' && req.url.startsWith('/api')) {
    if (req.url === '/api' || req.url.startsWith('/api?')) {
      return json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
    }
  }
  const review = /^\/apis\/authentication\.k8s\.io\/(v1|v1beta1|v1alpha1)\/selfsubjectreviews/.exec(req.url);
  if (req.method === 'POST' && review) {
    return json(res, 201, {
      kind: 'SelfSubjectReview', apiVersion: `authentication.k8s.io/${review[1]}`,
      metadata: { creationTimestamp: null }, status: { userInfo: user },
    });
  }
  return json(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'not found', reason: 'NotFound', code: 404 });
});
// API_HOST=ADDRESS: listen on another address of this machine (one a network namespace of the
// test's can reach, tests/suite/field_networks.rs).
server.listen(0, process.env.API_HOST || '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
