#!/usr/bin/env node
// A real browser for --browser-command: headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core. It types the user name and password into the provider's login page, accepts
// (or cancels) consent, follows the redirect to the plugin's loopback listener, and records the
// page the user ends on, with a screenshot.
//
// Settings from the environment (kubectl passes its environment through the plugin to us):
//   LOGIN_USER         account to sign in as (default alice)
//   LOGIN_CANCEL=1     press "[ Cancel ]" at the consent page
//   LOGIN_STALL=1      open the login page and do nothing, like a user who walked away
//   LOGIN_LOG          file to append one JSON line per run to
//   SCREENSHOT         path of the PNG of the final page
//   LOGIN_ALLOW_HOSTS  more host names (comma-separated) the pages may load from besides
//                      127.0.0.1 and localhost: a provider on another address of the machine
//   LOGIN_IGNORE_HTTPS_ERRORS=1  accept the test CA's certificates, as a company laptop trusts
//                      its company's CA (playwright has no per-browser CA setting)
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const start = process.argv[2];
const log = { browser: 'chromium' };
// One line per run started: its report below comes after the redirect, when the plugin may
// already have exited, and the test waits for every started run's report (tests/suite/common/browser.rs).
if (process.env.LOGIN_LOG) fs.appendFileSync(`${process.env.LOGIN_LOG}.started`, '1\n');
// The provider's origin, once the plugin's start page (on its loopback listener) has sent the
// browser there.
let providerOrigin;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      // As root in a container Chromium refuses to start with its sandbox; there is no other
      // user to drop to here, and the pages are our own test provider's.
      '--no-sandbox',
      // /dev/shm is small in containers; without this, renderers crash on larger pages.
      '--disable-dev-shm-usage',
      // The machine has no network but loopback: keep Chromium from trying its own services.
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic', '--disable-gpu',
    ],
  });
  try {
    const page = await browser.newPage({ ignoreHTTPSErrors: process.env.LOGIN_IGNORE_HTTPS_ERRORS === '1' });
    // The provider's pages @import a web font; nothing outside loopback is reachable here.
    const allowed = ['127.0.0.1', 'localhost', ...(process.env.LOGIN_ALLOW_HOSTS || '').split(',').filter(Boolean)];
    await page.route((url) => !allowed.includes(url.hostname), (route) => route.abort());
    await page.goto(start, { waitUntil: 'domcontentloaded' });
    providerOrigin = new URL(page.url()).origin;
    log.steps = [new URL(page.url()).pathname];
    if (process.env.LOGIN_STALL === '1') {
      log.stalled = true;
      await new Promise((resolve) => { setTimeout(resolve, Number(process.env.LOGIN_STALL_SECS || 15) * 1000); });
      return;
    }
    await page.fill('input[name=login]', process.env.LOGIN_USER || 'alice');
    await page.fill('input[name=password]', 'secret');
    await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type=submit]')]);
    log.steps.push('login');
    const leavesProvider = page.waitForURL((url) => url.origin !== providerOrigin, { waitUntil: 'load', timeout: 30_000 });
    if (process.env.LOGIN_CANCEL === '1') {
      await page.click('text=[ Cancel ]');
      log.steps.push('cancel');
    } else {
      await page.click('button:has-text("Continue")');
      log.steps.push('consent');
    }
    await leavesProvider;
    log.final_url_host = new URL(page.url()).host;
    log.final_query = Object.fromEntries(new URL(page.url()).searchParams.entries());
    log.title = await page.title();
    log.text = await page.innerText('body');
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  } finally {
    await browser.close();
  }
}

main()
  .catch((e) => { log.error = String(e); })
  .finally(() => {
    if (process.env.LOGIN_LOG) fs.appendFileSync(process.env.LOGIN_LOG, `${JSON.stringify(log)}\n`);
  });
