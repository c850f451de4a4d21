// The profile's data rights in a real browser against the real gateways
// (API.md "Data rights"): "Download my data" saves the whole export as a
// file under the page's strict CSP; "Erase my account" asks for the
// password, signs in again for a fresh session and erases, after which the
// old password and token are refused and the owner sees a former member.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { SLOW, http, launch, openAs, readEnv, shot, world } from './harness.mjs';

const env = readEnv();
const T = 15000 * SLOW; // a wait for something the page must show
let browser;

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser.close();
});

/** Sends text from the page's composer (Enter). */
async function say(page, text) {
  await page.fill('#composer', text);
  await page.press('#composer', 'Enter');
}

/* The browser logs every refused fetch as a console error ("Failed to load
 * resource: ... status of 401"): the ones a test provokes on purpose are
 * expected, anything else is not. */
const unexpected = (errors, statuses) => {
  const left = [...statuses];
  return errors.filter((e) => {
    const i = left.findIndex((s) => e.includes(`status of ${s}`));
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
};

test('download my data, then erase my account with my password', async () => {
  const w = await world({ people: [{ name: 'Ana Alvarez' }, { name: 'Olga Owner', role: 'owner' }] });
  const [ana, olga] = w.people;
  const route = `/w/${w.ws}/r/${w.room.id}`;
  const a = await openAs(browser, env.gw1, ana, route);
  const o = await openAs(browser, env.gw2, olga, route);
  for (const p of [a.page, o.page]) await p.locator('.conn[data-state="open"]').waitFor({ timeout: T });
  const anaSays = `Ana's own words ${w.tag}`;
  const olgaSays = `Olga's answer ${w.tag}`;
  await say(a.page, anaSays);
  await o.page.locator('.msg', { hasText: anaSays }).waitFor({ timeout: T }); // stored
  await say(o.page, olgaSays);
  await a.page.locator('.msg', { hasText: olgaSays }).waitFor({ timeout: T });

  // The profile, through the top bar's link.
  await a.page.getByRole('link', { name: 'Profile' }).click();
  await a.page.locator('#export').waitFor({ timeout: T });
  assert.equal(await a.page.locator('.error:visible').count(), 0);

  // The export arrives whole and is saved as a file (a blob: URL and a
  // temporary <a download>; the CSP would show as a console error).
  const [download] = await Promise.all([a.page.waitForEvent('download', { timeout: T }), a.page.click('#export')]);
  assert.match(download.suggestedFilename(), /^parley-export-\d{4}-\d{2}-\d{2}\.json$/);
  assert.equal(await download.failure(), null);
  const text = readFileSync(await download.path(), 'utf8');
  const doc = JSON.parse(text);
  assert.equal(doc.format, 'parley-export');
  assert.equal(doc.subject, ana.id);
  assert.equal(doc.account.email, ana.email);
  assert.ok(
    doc.messages.some((m) => m.body === anaSays && m.room === w.room.id),
    'her own message is in the export',
  );
  assert.ok(!text.includes(olga.email), "another person's email is not in it");
  assert.ok(!text.includes(olgaSays), "another person's message is not in it");
  await a.page.locator('.notice[role="status"]', { hasText: download.suggestedFilename() }).waitFor({ timeout: T });
  await a.page.locator('.danger-zone').scrollIntoViewIfNeeded();
  await shot(a.page, 'profile-laptop');

  // Erasure: the confirmation step takes focus to the password.
  await a.page.click('#erase-start');
  await a.page.locator('#f-erase_password:focus').waitFor({ timeout: T });
  // A wrong password erases nothing and says why.
  await a.page.fill('#f-erase_password', `${ana.password}-wrong`);
  await a.page.click('#erase-confirm');
  await a.page.locator('#erase-error:not([hidden])', { hasText: 'Wrong email or password.' }).waitFor({ timeout: T });
  assert.equal((await http(env.gw1, 'GET', '/me', undefined, ana.token)).status, 200, 'still there');
  await a.page.setViewportSize({ width: 390, height: 844 });
  await a.page.locator('#erase-confirm').scrollIntoViewIfNeeded();
  await shot(a.page, 'profile-erase-phone');
  await a.page.setViewportSize({ width: 1280, height: 800 });

  await a.page.fill('#f-erase_password', ana.password);
  await a.page.click('#erase-confirm');
  const notice = a.page.locator('.auth .notice', { hasText: 'Your account was erased.' });
  await notice.waitFor({ timeout: T });
  assert.equal(await a.page.evaluate(() => localStorage.getItem('parley.session')), null, 'signed out');
  assert.equal(await a.page.getByRole('button', { name: 'Sign in' }).count(), 1);
  await shot(a.page, 'profile-erased');

  // The account is gone: neither the old password nor the old token works.
  const login = await http(env.gw1, 'POST', '/auth/login', { email: ana.email, password: ana.password });
  assert.equal(login.status, 401);
  assert.equal(login.json.error.code, 'invalid_credentials');
  const me = await http(env.gw2, 'GET', '/me', undefined, ana.token);
  assert.equal(me.status, 401);

  // The owner's view: Ana's message is a former member's stub (the
  // workspace's erasure_content is `delete`), Olga's answer is untouched.
  await o.page.reload();
  const stub = o.page.locator('.msg.deleted').first();
  await stub.waitFor({ timeout: T });
  assert.match(await stub.locator('.sender').textContent(), /^Former member [0-9a-f]{4}$/);
  assert.equal(await o.page.locator('.msg', { hasText: anaSays }).count(), 0);
  await o.page.locator('.msg', { hasText: olgaSays }).waitFor({ timeout: T });
  assert.equal(await o.page.locator('.sender', { hasText: 'Ana Alvarez' }).count(), 0);

  assert.deepEqual(unexpected(a.errors, [401]), []); // the wrong password's login
  assert.deepEqual(o.errors, []);
  await a.context.close();
  await o.context.close();
});

test("a workspace's only owner is told why the account cannot be erased, and keeps it", async () => {
  const w = await world({ people: [{ name: 'Sole Owner', role: 'owner' }] });
  const [so] = w.people;
  const s = await openAs(browser, env.gw1, so, '/me');
  await s.page.locator('#erase-start').waitFor({ timeout: T });
  await s.page.locator('.danger-zone .hint', { hasText: `You own Browser test ${w.tag}` }).waitFor({ timeout: T });
  await s.page.click('#erase-start');
  await s.page.fill('#f-erase_password', so.password);
  await s.page.click('#erase-confirm');
  await s.page
    .locator('#erase-error:not([hidden])', { hasText: 'You are the only owner of a workspace.' })
    .waitFor({ timeout: T });
  // Still signed in, still there, and the confirmation can be left.
  assert.notEqual(await s.page.evaluate(() => localStorage.getItem('parley.session')), null);
  assert.equal((await http(env.gw1, 'GET', '/me', undefined, so.token)).status, 200);
  await s.page.getByRole('button', { name: 'Cancel' }).click();
  await s.page.locator('#erase-start:focus').waitFor({ timeout: T });
  assert.deepEqual(unexpected(s.errors, [409]), []);
  await s.context.close();
});
