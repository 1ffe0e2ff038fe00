// Beside a real Ory Hydra (tests/suite/common/hydra.rs): the two things Hydra leaves to its operator.
//
// 1. A login-and-consent app. Hydra has no login UI: it redirects the browser to URLS_LOGIN
//    with a login_challenge and to URLS_CONSENT with a consent_challenge, and the app accepts
//    them through Hydra's admin API, putting the user's claims into session.id_token. Its
//    pages have the same shape as oidc-provider's development pages (hidden `prompt` field,
//    `login`/`password` inputs), so tests/support/login.mjs walks them as it walks the npm
//    provider's.
// 2. A counting reverse proxy in front of Hydra's public port: the issuer is the proxy's
//    address, so every request the plugin makes passes here. It counts requests per path and
//    records each token request (grant type, how the client authenticated, a hash of the
//    refresh token presented, and Hydra's answer), which is how a test proves that no refresh
//    token was presented twice.
//
// Usage: node hydra-app.mjs   (HYDRA_ADMIN, HYDRA_PUBLIC: Hydra's URLs; APP_PORT, PROXY_PORT;
// PROXY_TLS_CERT and PROXY_TLS_KEY: the proxy, hence the issuer, serves HTTPS, as a Hydra
// behind its TLS front does; kube-apiserver trusts https issuers only)
// Prints one JSON line {"app": URL, "proxy": URL} once both listen.
// Test hooks on the proxy: GET /__test/counts, GET /__test/token-requests, POST /__test/reset.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import express from 'express';

const env = process.env;
const admin = env.HYDRA_ADMIN;
const upstream = new URL(env.HYDRA_PUBLIC);

// The users, as a company directory would present them.
const users = {
  alice: { password: 'secret', claims: { email: 'alice@example.com', email_verified: true, preferred_username: 'alice', groups: ['KubernetesAdministrators', 'developers'] } },
  bob: { password: 'secret', claims: { email: 'bob@example.com', email_verified: true, preferred_username: 'bob', groups: ['developers'] } },
};

async function adminCall(method, path, body) {
  const res = await fetch(`${admin}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const page = (title, body) => `<!doctype html><title>${title}</title>${body}`;

const app = express();
app.use(express.urlencoded({ extended: false }));

function loginForm(challenge, error) {
  return page('Sign in', `${error ? `<p>${escape(error)}</p>` : ''}<form method="post" action="/login">
<input type="hidden" name="prompt" value="login"><input type="hidden" name="challenge" value="${escape(challenge)}">
<input name="login"><input type="password" name="password"><button>Sign in</button></form>`);
}

app.get('/login', async (req, res, next) => {
  try {
    const challenge = req.query.login_challenge;
    const request = await adminCall('GET', `/admin/oauth2/auth/requests/login?login_challenge=${encodeURIComponent(challenge)}`);
    if (request.skip) {
      const done = await adminCall('PUT', `/admin/oauth2/auth/requests/login/accept?login_challenge=${encodeURIComponent(challenge)}`, { subject: request.subject });
      return res.redirect(done.redirect_to);
    }
    res.type('html').send(loginForm(challenge));
  } catch (e) { next(e); }
});

app.post('/login', async (req, res, next) => {
  try {
    const { challenge, login, password } = req.body;
    if (!users[login] || users[login].password !== password) return res.type('html').send(loginForm(challenge, 'wrong user name or password'));
    const done = await adminCall('PUT', `/admin/oauth2/auth/requests/login/accept?login_challenge=${encodeURIComponent(challenge)}`, { subject: login, remember: false });
    res.redirect(done.redirect_to);
  } catch (e) { next(e); }
});

app.get('/consent', async (req, res, next) => {
  try {
    const challenge = req.query.consent_challenge;
    const request = await adminCall('GET', `/admin/oauth2/auth/requests/consent?consent_challenge=${encodeURIComponent(challenge)}`);
    res.type('html').send(page('Consent', `<p>${escape(request.client.client_id)} asks for: ${escape(request.requested_scope.join(' '))}</p>
<form method="post" action="/consent"><input type="hidden" name="prompt" value="consent"><input type="hidden" name="challenge" value="${escape(challenge)}"><button>Allow</button></form>
<a href="/consent/abort?challenge=${encodeURIComponent(challenge)}">Cancel</a>`));
  } catch (e) { next(e); }
});

app.post('/consent', async (req, res, next) => {
  try {
    const { challenge } = req.body;
    const request = await adminCall('GET', `/admin/oauth2/auth/requests/consent?consent_challenge=${encodeURIComponent(challenge)}`);
    const done = await adminCall('PUT', `/admin/oauth2/auth/requests/consent/accept?consent_challenge=${encodeURIComponent(challenge)}`, {
      grant_scope: request.requested_scope,
      grant_access_token_audience: request.requested_access_token_audience,
      remember: false,
      // Hydra puts these into the ID token as they are: the claims an API server maps.
      session: { id_token: users[request.subject].claims },
    });
    res.redirect(done.redirect_to);
  } catch (e) { next(e); }
});

app.get('/consent/abort', async (req, res, next) => {
  try {
    const done = await adminCall('PUT', `/admin/oauth2/auth/requests/consent/reject?consent_challenge=${encodeURIComponent(req.query.challenge)}`, { error: 'access_denied', error_description: 'The user declined' });
    res.redirect(done.redirect_to);
  } catch (e) { next(e); }
});

app.use((err, _req, res, _next) => {
  console.error('login app:', err);
  res.status(500).type('text').send(String(err));
});

// The counting proxy: request bodies pass through byte for byte.
const counts = {};
const tokenRequests = [];
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex').slice(0, 16);

const proxyTls = env.PROXY_TLS_CERT && { cert: fs.readFileSync(env.PROXY_TLS_CERT), key: fs.readFileSync(env.PROXY_TLS_KEY) };
const serve = (handler) => (proxyTls ? https.createServer(proxyTls, handler) : http.createServer(handler));
const proxy = serve(async (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/__test/counts') return res.end(JSON.stringify(counts));
  if (path === '/__test/token-requests') return res.end(JSON.stringify(tokenRequests));
  if (path === '/__test/reset') {
    for (const k of Object.keys(counts)) delete counts[k];
    tokenRequests.length = 0;
    return res.end('{}');
  }
  counts[path] = (counts[path] || 0) + 1;
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  let record = null;
  if (path === '/oauth2/token') {
    const form = new URLSearchParams(body.toString('utf8'));
    const basic = (req.headers.authorization || '').startsWith('Basic ');
    record = {
      grant_type: form.get('grant_type'),
      client_auth: basic ? 'client_secret_basic' : form.has('client_secret') ? 'client_secret_post' : 'none',
      client_id: form.get('client_id'),
      refresh_token_sha256: form.has('refresh_token') ? sha(form.get('refresh_token')) : null,
      scope: form.get('scope'),
    };
    tokenRequests.push(record);
  }
  const headers = { ...req.headers, host: upstream.host };
  const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
    if (record) {
      record.status = answer.statusCode;
      const parts = [];
      answer.on('data', (c) => parts.push(c));
      answer.on('end', () => {
        try {
          const json = JSON.parse(Buffer.concat(parts).toString('utf8'));
          record.error = json.error;
          record.issued_refresh_token = 'refresh_token' in json;
        } catch { /* not JSON: the status says enough */ }
      });
    }
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  forward.on('error', (e) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`hydra is down: ${e.message}`);
  });
  forward.end(body);
});

const appServer = app.listen(Number(env.APP_PORT), '127.0.0.1', () => {
  proxy.listen(Number(env.PROXY_PORT), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ app: `http://127.0.0.1:${appServer.address().port}`, proxy: `${proxyTls ? 'https' : 'http'}://127.0.0.1:${proxy.address().port}` })}\n`);
  });
});
