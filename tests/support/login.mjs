#!/usr/bin/env node
// A scripted "browser" for --browser-command: it follows the authorization URL through the
// provider's own login and consent pages with real HTTP requests and a cookie jar, then
// delivers the redirect to the plugin's loopback listener, like a person clicking through.
//
// Settings from the environment (kubectl passes its environment to the plugin, which passes
// it to us):
//   LOGIN_USER      account to sign in as (default alice)
//   LOGIN_LOG       file to append one JSON line per run to (what happened, for the test)
//   LOGIN_TAMPER_STATE=1  first deliver the callback with a wrong state, then the real one
//   LOGIN_CANCEL=1  press "cancel" at the consent page (the provider answers access_denied),
//                   or "Abort" on the device grant's confirmation page
//   LOGIN_REDIRECT_FILE  write the final redirect address to this file instead of loading it
//   LOGIN_COOKIE_JAR     keep cookies in this file between runs (a browser profile)
//   LOGIN_BAD_CALLBACKS=1  send hostile requests to the listener before the real callback
//   LOGIN_LOOPBACK_HOST=::1  deliver the callback over [::1] (a browser resolving localhost to IPv6)
//   LOGIN_HOLD=DIR  pause at checkpoints so a test can act in between: write DIR/NAME.reached
//                   (the URL about to be loaded) and wait for DIR/NAME.go; NAME is `start` (before
//                   anything) and `after-start` (after the plugin's sign-out start page answered)
// A start URL outside /realms/ is the plugin's own start page (sign-in or sign-out: a one-time
// key on its loopback listener), which redirects to the provider.
// It also walks the device grant's pages (code confirmation, then login and consent).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

const start = process.argv[2];
const user = process.env.LOGIN_USER || 'alice';
const log = { url_host: new URL(start).host, steps: [] };
// One line per run started: its report below comes after the redirect, when the plugin may
// already have exited, and the test waits for every started run's report (tests/suite/common/browser.rs).
if (process.env.LOGIN_LOG) fs.appendFileSync(`${process.env.LOGIN_LOG}.started`, '1\n');
// The authorization request's parameters, minus the per-login secrets, for the tests.
const authParams = (u) => Object.fromEntries([...u.searchParams].filter(([k]) => !['state', 'nonce', 'code_challenge'].includes(k)));
log.auth_params = authParams(new URL(start));
// LOGIN_COOKIE_JAR=FILE keeps the provider's cookies between runs, like a real browser
// profile: the provider's session then survives from one login to the next.
const jarFile = process.env.LOGIN_COOKIE_JAR;
const jar = new Map(jarFile && fs.existsSync(jarFile) ? JSON.parse(fs.readFileSync(jarFile, 'utf8')) : []);
// The provider's pages all live under /realms/; anything else is the plugin's listener.
// LOGIN_PROVIDER_HOSTS=host:port,...: a provider shaped otherwise (Hydra, whose login app is
// another server; zitadel's example), named by the hosts its pages are served from.
const providerHosts = (process.env.LOGIN_PROVIDER_HOSTS || '').split(',').filter(Boolean);
const isProvider = (u) => new URL(u).pathname.startsWith('/realms/') || providerHosts.includes(new URL(u).host);

// GET `url` over a connection to `address` (e.g. ::1) with the URL's own Host header; answers
// with the parts of a fetch Response the callback step reads.
function getVia(url, address) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    // An https listener (--local-server-cert) is checked against the name in the URL, as a
    // browser does, whichever address it connected to.
    const client = u.protocol === 'https:' ? https : http;
    const req = client.request({ host: address, family: address.includes(':') ? 6 : 4, port: u.port, path: u.pathname + u.search, headers: { host: u.host }, servername: u.hostname }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: { get: (k) => res.headers[k.toLowerCase()] }, text: async () => body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function cookieHeader() {
  return [...jar.entries()].map(([k, v]) => `${k}=${v}`).join('; ');
}

async function request(url, options = {}) {
  const res = await fetch(url, { ...options, redirect: 'manual', headers: { ...(options.headers || {}), cookie: cookieHeader() } });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return res;
}

function formOf(html, base) {
  const action = /<form[^>]*action="([^"]+)"/.exec(html);
  if (!action) return null;
  const fields = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]] = m[2];
  return { action: new URL(action[1].replace(/&amp;/g, '&'), base).toString(), fields };
}

// LOGIN_BAD_CALLBACKS=1: before the real callback, the hostile or stray requests a loopback
// listener meets (a favicon, a forged callback without state, a DNS-rebinding page, a giant
// header, an idle connection), each with the status it got.
function rawGet(target, headers) {
  return new Promise((resolve) => {
    const u = new URL(target);
    const req = http.request({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', (e) => resolve(`error ${e.code || e.message}`));
    req.end();
  });
}

async function badCallbacks(callback) {
  const u = new URL(callback);
  const idle = net.connect(Number(u.port), '127.0.0.1');
  const result = {
    favicon: await rawGet(`${u.origin}/favicon.ico`, {}),
    no_state: await rawGet(`${u.origin}/?code=stolen-code`, {}),
    rebinding: await rawGet(callback, { host: `evil.example.com:${u.port}` }),
    giant_header: await rawGet(`${u.origin}/`, { 'x-padding': 'a'.repeat(256 * 1024) }),
  };
  idle.destroy();
  return result;
}

// LOGIN_HOLD: announce checkpoint `name` (written whole, then renamed) and wait for the go.
async function hold(name, url) {
  const dir = process.env.LOGIN_HOLD;
  if (!dir) return;
  fs.writeFileSync(`${dir}/${name}.tmp`, url);
  fs.renameSync(`${dir}/${name}.tmp`, `${dir}/${name}.reached`);
  while (!fs.existsSync(`${dir}/${name}.go`)) await new Promise((r) => setTimeout(r, 50));
}

async function main() {
  // What the plugin passed us: exactly one argument, the URL to open.
  log.argv_count = process.argv.length - 2;
  await hold('start', start);
  let url = start;
  let pending = null;
  for (let hop = 0; hop < 20; hop++) {
    if (hop === 0 && !isProvider(url)) {
      // The plugin's own start page (sign-in or sign-out): it redirects to the provider.
      const res = await fetch(url, { redirect: 'manual' });
      const location = res.headers.get('location');
      log.start_status = res.status;
      if (!location || !isProvider(new URL(location, url).toString())) throw new Error(`the start page answered ${res.status}`);
      url = new URL(location, url).toString();
      // This plugin and int128/kubelogin both open a loopback page of their own, which
      // redirects to the authorization request: record that request's parameters, as if it had
      // been opened directly. A sign-out's start page is a step of its own.
      // The device grant's start page leads to the verification page with the user code.
      if (new URL(url).searchParams.has('response_type')) log.auth_params = authParams(new URL(url));
      else if (new URL(url).searchParams.has('user_code')) log.device_start = true;
      else log.steps.push('plugin-start');
      await hold('after-start', url);
      continue;
    }
    if (!isProvider(url)) {
      // The redirect to the plugin's loopback listener.
      if (process.env.LOGIN_REDIRECT_FILE) {
        // authcode-keyboard: the person copies the address instead of the browser loading it.
        fs.writeFileSync(process.env.LOGIN_REDIRECT_FILE, url);
        log.redirect_copied = true;
        return;
      }
      if (process.env.LOGIN_TAMPER_STATE === '1') {
        const forged = new URL(url);
        forged.searchParams.set('state', 'forged-state');
        const res = await fetch(forged, { redirect: 'manual' });
        log.steps.push({ forged_state_status: res.status });
      }
      if (process.env.LOGIN_BAD_CALLBACKS === '1') log.bad = await badCallbacks(url);
      // For the secret-leak test: the code the plugin must never print.
      if (process.env.LOGIN_RECORD_CODE === '1') log.code = new URL(url).searchParams.get('code');
      // LOGIN_LOOPBACK_HOST=::1: a browser that resolves `localhost` to IPv6 first connects
      // to [::1], still sending `Host: localhost:PORT`.
      const res = process.env.LOGIN_LOOPBACK_HOST ? await getVia(url, process.env.LOGIN_LOOPBACK_HOST) : await fetch(url, { redirect: 'manual' });
      log.callback_status = res.status;
      if (res.headers.get('location')) log.callback_location = res.headers.get('location');
      log.callback_page = await res.text();
      if (process.env.LOGIN_LOOPBACK_HOST) log.callback_via = process.env.LOGIN_LOOPBACK_HOST;
      return;
    }
    let html;
    if (pending) {
      // A form post answered with a page rather than a redirect (the device pages).
      html = pending;
      pending = null;
    } else {
      const res = await request(url);
      if (res.status >= 300 && res.status < 400) {
        url = new URL(res.headers.get('location'), url).toString();
        continue;
      }
      html = await res.text();
    }
    if (html.includes('<title>Sign-in Success</title>')) {
      // The device grant ends on the provider's own page; the plugin polls for the tokens.
      log.device_success = true;
      return;
    }
    const form = formOf(html, url);
    if (!form) throw new Error(`no form on ${new URL(url).pathname}`);
    if ('user_code' in form.fields) {
      // The device grant's code entry and confirmation pages ("Continue", or "Abort" with
      // LOGIN_CANCEL=1 on the confirmation).
      log.steps.push('device');
      const fields = { ...form.fields };
      if (fields.confirm && process.env.LOGIN_CANCEL === '1') fields.abort = 'yes';
      const post = await request(form.action, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      if (post.status >= 300 && post.status < 400) {
        url = new URL(post.headers.get('location'), form.action).toString();
      } else {
        url = form.action;
        pending = await post.text();
      }
      continue;
    }
    if (/logout/.test(new URL(form.action).pathname) && 'xsrf' in form.fields) {
      // RP-initiated logout's confirmation: "Yes, sign me out".
      log.steps.push('logout');
      const post = await request(form.action, { method: 'POST', body: new URLSearchParams({ ...form.fields, logout: 'yes' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      url = new URL(post.headers.get('location'), form.action).toString();
      continue;
    }
    if (form.fields.prompt === 'login') {
      log.steps.push('login');
      const body = new URLSearchParams({ ...form.fields, login: user, password: 'secret' });
      const post = await request(form.action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      url = new URL(post.headers.get('location'), form.action).toString();
    } else if (form.fields.prompt === 'consent') {
      log.steps.push('consent');
      if (process.env.LOGIN_CANCEL === '1') {
        const abort = /href="([^"]*abort[^"]*)"/.exec(html);
        url = new URL(abort[1].replace(/&amp;/g, '&'), url).toString();
        continue;
      }
      const post = await request(form.action, { method: 'POST', body: new URLSearchParams(form.fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      url = new URL(post.headers.get('location'), form.action).toString();
    } else if (/<input[^>]*name="username"/.test(html) && /<input[^>]*name="password"/.test(html)) {
      // A plain username-and-password form (zitadel's example provider): LOGIN_USER and
      // LOGIN_PASSWORD (default secret).
      log.steps.push('login');
      const body = new URLSearchParams({ ...form.fields, username: user, password: process.env.LOGIN_PASSWORD || 'secret' });
      const post = await request(form.action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      if (!post.headers.get('location')) throw new Error(`the login form answered ${post.status} without a redirect`);
      url = new URL(post.headers.get('location'), form.action).toString();
    } else {
      throw new Error(`unexpected form with prompt=${form.fields.prompt}`);
    }
  }
  throw new Error('too many redirects');
}

main()
  .catch((e) => { log.error = String(e); })
  .finally(() => {
    if (jarFile) fs.writeFileSync(jarFile, JSON.stringify([...jar.entries()]));
    if (process.env.LOGIN_LOG) fs.appendFileSync(process.env.LOGIN_LOG, `${JSON.stringify(log)}\n`);
  });
