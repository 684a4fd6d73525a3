// Browser sign-in through the sandbox's token handler, in a real Chromium (playwright-core, Debian's chromium).
//
// Usage: node sign_in.mjs CONFIG.json   (one JSON line of results on stdout)
// CONFIG: {origin, attacker_origin, username, password, wait_for_expiry_ms, screenshots_dir}
// Each step records what the page could see and what the server answered; the Python test judges them.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { chromium } from 'playwright-core';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = { steps: {}, bodies: [] };
const userDataDir = mkdtempSync(join(tmpdir(), 'authgate-chromium-'));
mkdirSync(config.screenshots_dir, { recursive: true });

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: config.executable || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'],
});
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const shot = async (page, name) => page.screenshot({ path: join(config.screenshots_dir, `${name}.png`) });
try {
  const page = context.pages()[0] || await context.newPage();
  // Every body the app's origin sends to the page, to prove none carries a token.
  page.on('response', async (response) => {
    if (!response.url().startsWith(config.origin)) return;
    try { results.bodies.push({ url: response.url(), body: await response.text() }); } catch { /* redirects */ }
  });
  const pageView = () => page.evaluate(() => ({
    cookie: document.cookie, local: localStorage.length, session: sessionStorage.length,
  }));

  await page.goto(`${config.origin}/`);
  await page.click('#login');
  await page.waitForSelector('input[name="login"]');
  await shot(page, '1-provider-login');
  await page.fill('input[name="login"]', config.username);
  await page.fill('input[name="password"]', config.password);
  await page.click('button[type="submit"]');
  await page.waitForSelector('button[type="submit"]');
  await shot(page, '2-provider-consent');
  await page.click('button[type="submit"]');
  await page.waitForURL(`${config.origin}/`);
  await page.waitForFunction(() => document.getElementById('who').textContent.startsWith('signed in'));
  await shot(page, '3-signed-in');
  results.steps.signed_in = await page.textContent('#who');
  results.steps.page_view = await pageView();
  results.steps.cookies_after_login = await context.cookies(config.origin);
  results.steps.first_call = await page.evaluate(() => callApi('GET', '/api/orders'));

  // Past the access token's lifetime: five parallel calls, each refreshing first if expired.
  await sleep(config.wait_for_expiry_ms);
  results.steps.cookies_before_refresh = await context.cookies(config.origin);
  results.steps.parallel_after_expiry = await page.evaluate(
    () => Promise.all([1, 2, 3, 4, 5].map(() => callApi('GET', '/api/orders'))));
  results.steps.cookies_after_refresh = await context.cookies(config.origin);
  await shot(page, '4-after-refresh');

  // A page on another site posts forms at the app: the browser sends what it would for any cross-site form.
  const attacker = await context.newPage();
  await attacker.goto(`${config.attacker_origin}/`);
  const [logoutAnswer] = await Promise.all([
    attacker.waitForResponse((r) => r.url() === `${config.origin}/auth/logout`),
    attacker.click('#logout-form button'),
  ]);
  results.steps.cross_site_logout = { status: logoutAnswer.status() };
  await attacker.goto(`${config.attacker_origin}/`);
  const [orderAnswer] = await Promise.all([
    attacker.waitForResponse((r) => r.url() === `${config.origin}/api/orders`),
    attacker.click('#order-form button'),
  ]);
  results.steps.cross_site_order = { status: orderAnswer.status() };
  await attacker.close();
  results.steps.still_signed_in = await page.evaluate(() => loadSession().then((s) => !!s));

  const redirect = await page.goto(`${config.origin}/auth/login?return_to=//evil.example/x`);
  results.steps.open_redirect = { status: redirect.status(), url: page.url() };
  await page.goto(`${config.origin}/`);
  await page.waitForFunction(() => document.getElementById('who').textContent !== 'checking session...');

  results.steps.logout = await page.evaluate(() => logout());
  results.steps.cookies_after_logout = await context.cookies(config.origin);
  results.steps.call_after_logout = await page.evaluate(() => fetch('/api/orders', { headers: { 'x-authgate-csrf': '1' } })
    .then((r) => r.status));
  await shot(page, '5-signed-out');

  // The session cookie saved before logout, put back: its refresh token was revoked, so it cannot refresh.
  const saved = results.steps.cookies_after_refresh.filter((c) => c.name.startsWith('__Host-authgate-session'));
  const asSet = (c, value) => ({
    name: c.name, value, domain: c.domain, path: '/', httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite,
  });
  await context.addCookies(saved.map((c) => asSet(c, c.value)));
  results.steps.replayed_cookie_refresh = await page.evaluate(
    () => fetch('/auth/refresh', { method: 'POST', headers: { 'x-authgate-csrf': '1' } }).then((r) => r.status));

  // A tampered session cookie: one character of the sealed value changed.
  const [first] = saved;
  const flipped = first.value.slice(0, -2) + (first.value.endsWith('A') ? 'B' : 'A') + first.value.slice(-1);
  await context.addCookies([asSet(first, flipped)]);
  results.steps.tampered_session = await page.evaluate(() => fetch('/auth/session').then((r) => r.status));
} catch (err) {
  results.error = String(err && err.stack || err);
} finally {
  await context.close();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
