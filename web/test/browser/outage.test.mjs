// The gateway a page is connected to stops (SIGTERM) and comes back: the
// page shows the outage, recovers, shows what it missed once, in order,
// and a message typed during the outage is delivered once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { SLOW, envSh, launch, openAs, readEnv, shot, world } from './harness.mjs';

const env = readEnv();
const T = 15000 * SLOW;
let browser;

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser.close();
});

const bodies = (page) => page.locator('.messages .msg:not(.outgoing) .body').allTextContents();

async function say(page, text) {
  await page.fill('#composer', text);
  await page.press('#composer', 'Enter');
}

test('a page whose gateway restarts shows the outage and recovers without gap or duplicate', async () => {
  const w = await world({ people: [{ name: 'Jo Jones' }, { name: 'Kim Kato' }] });
  const [jo, kim] = w.people;
  const route = `/w/${w.ws}/r/${w.room.id}`;
  const j = await openAs(browser, env.gw1, jo, route); // on the gateway that stops
  const k = await openAs(browser, env.gw2, kim, route);
  for (const p of [j.page, k.page]) await p.locator('.conn[data-state="open"]').waitFor({ timeout: T });
  await say(k.page, 'before 1');
  await say(k.page, 'before 2');
  await j.page.locator('.msg', { hasText: 'before 2' }).waitFor({ timeout: T });

  let restarted = false;
  try {
    envSh('stop-gw1');
    await j.page.locator('.conn[data-state="reconnecting"]').waitFor({ timeout: T });
    assert.match(await j.page.locator('.conn').textContent(), /Connection lost/);

    // Meanwhile: Kim goes on talking on the other gateway, Jo types one.
    await say(k.page, 'during 1');
    await say(k.page, 'during 2');
    await k.page.locator('.msg:not(.outgoing)', { hasText: 'during 2' }).waitFor({ timeout: T });
    await say(j.page, 'typed while offline');
    const pending = j.page.locator('.msg.outgoing[data-state="pending"]', { hasText: 'typed while offline' });
    await pending.waitFor({ timeout: T });
    await shot(j.page, 'outage');

    envSh('start-gw1');
    restarted = true;
    await j.page.locator('.conn[data-state="open"]').waitFor({ timeout: T });
    await j.page.locator('.msg:not(.outgoing)', { hasText: 'typed while offline' }).waitFor({ timeout: T });
    await k.page.locator('.msg', { hasText: 'typed while offline' }).waitFor({ timeout: T });
    await say(k.page, 'after');
    await j.page.locator('.msg', { hasText: 'after' }).waitFor({ timeout: T });
  } finally {
    if (!restarted) envSh('start-gw1');
  }

  const want = ['before 1', 'before 2', 'during 1', 'during 2', 'typed while offline', 'after'];
  assert.deepEqual(await bodies(j.page), want);
  assert.deepEqual(await bodies(k.page), want);
  assert.equal(await j.page.locator('.msg.outgoing').count(), 0, 'nothing left pending');
  // Seqs on the page ascend with no repeat.
  const seqs = (await j.page.locator('.messages .msg[data-seq]').evaluateAll((l) => l.map((e) => Number(e.dataset.seq))));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(new Set(seqs).size, seqs.length);
  await shot(j.page, 'recovered');
  // The dropped connection itself is the one expected console line.
  assert.deepEqual(j.errors.filter((e) => !/WebSocket connection to .* failed/.test(e)), []);
  assert.deepEqual(k.errors, []);
  await j.context.close();
  await k.context.close();
});
