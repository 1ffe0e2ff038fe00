#!/usr/bin/env node
// A real browser on Keycloak's own pages, for --browser-command: headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core. It opens the URL the plugin gives it and, page
// by page, does what a person would: types the user name and password into Keycloak's login
// form, sets a new password when Keycloak demands one, confirms a device's user code, grants
// consent, confirms a logout, until the browser leaves Keycloak (the plugin's loopback
// listener) or Keycloak says the device is signed in. Nothing is posted by hand.
//
// Settings from the environment (kubectl passes its environment through the plugin to us):
//   KC_ORIGIN          Keycloak's origin (https://127.0.0.1:PORT): pages there are Keycloak's
//   KC_USER, KC_PASSWORD  the account to sign in as
//   KC_NEW_PASSWORD    the password to set when Keycloak asks for a new one (first login)
//   KC_BROWSER_STATE   file keeping this "browser's" cookies between runs, as a browser left
//                      open keeps Keycloak's session cookie; without it every run is a new one
//   KC_STALL=1         open the page and do nothing, like a user who walked away
//   LOGIN_LOG          file to append one JSON line per run to
//   SCREENSHOT         path of the PNG of the final page
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const start = process.argv[2];
const kcOrigin = process.env.KC_ORIGIN;
const startUrl = new URL(start);
// What the plugin asked Keycloak for; state, nonce and the challenge itself only by name.
// A sign-in starts at the plugin's loopback listener, which redirects to Keycloak: then the
// first request to Keycloak is the one recorded.
function describe(url) {
  const query = {};
  for (const [k, v] of url.searchParams) {
    query[k] = ['code_challenge_method', 'response_type', 'scope', 'prompt', 'login_hint', 'client_id'].includes(k) ? v : '(set)';
  }
  log.start_path = url.pathname;
  log.start_query = query;
}
const log = { browser: 'chromium', steps: [] };
describe(startUrl);
// One line per run started: its report below comes after the redirect, when the plugin may
// already have exited, and the test waits for every started run's report (tests/suite/common/browser.rs).
if (process.env.LOGIN_LOG) fs.appendFileSync(`${process.env.LOGIN_LOG}.started`, '1\n');
const onKeycloak = (page) => new URL(page.url()).origin === kcOrigin;

// Whichever of Keycloak's page kinds is showing (its login theme's element ids).
async function pageKind(page) {
  const has = async (selector) => (await page.locator(selector).count()) > 0;
  if (await has('#device-user-code')) return 'device-code';
  if (await has('input[name=password-new]')) return 'new-password';
  if (await has('input[name=username]') && await has('input[name=password]')) return 'login-form';
  // prompt=login with a live session: Keycloak asks the session's user for the password
  // again, naming them, and ignores login_hint; another user must press "Restart login".
  if (await has('input[name=password]') && await has('#reset-login')) return 're-authenticate';
  if (await has('#kc-logout')) return 'logout-confirm';
  if (await has('input[name=accept], button[name=accept]')) return 'consent';
  return 'other';
}

async function submit(page, selector) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: 30_000 }),
    page.click(selector),
  ]);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      // As root in a container Chromium refuses to start with its sandbox.
      '--no-sandbox',
      // /dev/shm is small in containers; without this, renderers crash on larger pages.
      '--disable-dev-shm-usage',
      // The machine has no network but loopback: keep Chromium from trying its own services.
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic', '--disable-gpu',
    ],
  });
  const stateFile = process.env.KC_BROWSER_STATE;
  // Keycloak's certificate comes from the test's own CA; the plugin's trust of it is what the
  // tests check (--certificate-authority), not the browser's.
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    storageState: stateFile && fs.existsSync(stateFile) ? stateFile : undefined,
  });
  try {
    const page = await context.newPage();
    await page.route((url) => !['127.0.0.1', 'localhost'].includes(url.hostname), (route) => route.abort());
    // Keycloak may answer at once with a redirect back (a live session, a logout with
    // id_token_hint): having passed through it counts as having been there.
    let visitedKeycloak = false;
    page.on('request', (r) => {
      if (r.isNavigationRequest() && new URL(r.url()).origin === kcOrigin) {
        if (!visitedKeycloak && startUrl.origin !== kcOrigin) describe(new URL(r.url()));
        visitedKeycloak = true;
      }
    });
    await page.goto(start, { waitUntil: 'domcontentloaded' });
    if (process.env.KC_STALL === '1') {
      log.stalled = true;
      await new Promise((resolve) => { setTimeout(resolve, 15_000); });
      return;
    }
    for (let i = 0; i < 10; i += 1) {
      if (!onKeycloak(page)) {
        // Back at the plugin's loopback listener (after Keycloak): the end of the journey.
        if (visitedKeycloak) break;
        await page.waitForURL((url) => url.origin === kcOrigin, { timeout: 30_000 });
      }
      visitedKeycloak = true;
      const kind = await pageKind(page);
      log.steps.push(kind);
      if (kind === 'login-form') {
        await page.fill('input[name=username]', process.env.KC_USER || 'alice');
        await page.fill('input[name=password]', process.env.KC_PASSWORD || '');
        await submit(page, '#kc-login');
        // A refused login comes back to the same form with a message: stop there.
        if (onKeycloak(page) && await pageKind(page) === 'login-form') {
          log.refused = (await page.innerText('body')).replace(/\s+/g, ' ').trim();
          break;
        }
      } else if (kind === 're-authenticate') {
        const shown = (await page.locator('#kc-attempted-username').innerText().catch(() => '')).trim();
        if (shown === (process.env.KC_USER || 'alice')) {
          await page.fill('input[name=password]', process.env.KC_PASSWORD || '');
          await submit(page, '#kc-login');
        } else {
          await submit(page, '#reset-login');
        }
      } else if (kind === 'new-password') {
        await page.fill('input[name=password-new]', process.env.KC_NEW_PASSWORD || 'new-password');
        await page.fill('input[name=password-confirm]', process.env.KC_NEW_PASSWORD || 'new-password');
        await submit(page, 'input[type=submit], button[type=submit]');
      } else if (kind === 'device-code') {
        await submit(page, 'input[type=submit], button[type=submit]');
      } else if (kind === 'consent') {
        await submit(page, 'input[name=accept], button[name=accept]');
      } else if (kind === 'logout-confirm') {
        await submit(page, '#kc-logout');
      } else {
        // A page with nothing to fill in: the device grant's success page, or an error.
        break;
      }
    }
    log.final_url_host = new URL(page.url()).host;
    log.final_on_keycloak = onKeycloak(page);
    log.final_query_keys = [...new URL(page.url()).searchParams.keys()];
    log.title = await page.title();
    log.text = (await page.innerText('body')).replace(/\s+/g, ' ').trim();
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    if (stateFile) await context.storageState({ path: stateFile });
  } finally {
    await browser.close();
  }
}

main()
  .catch((e) => { log.error = String(e); })
  .finally(() => {
    if (process.env.LOGIN_LOG) fs.appendFileSync(process.env.LOGIN_LOG, `${JSON.stringify(log)}\n`);
  });
