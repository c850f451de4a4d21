// A 5,000-message room: the page renders a window of it, and reading older
// messages does not move the reader (no jump to the bottom, no jump at all
// when a page of history is added above).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import { ParleyClient } from '../../sdk/parley.mjs';
import { SLOW, launch, openAs, readEnv, shot, world } from './harness.mjs';

const env = readEnv();
const T = 20000 * SLOW;
const N = 5000;
let browser;

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser.close();
});

test('a 5,000-message room renders a window and keeps the reader in place while paging back', async () => {
  const w = await world({ people: [{ name: 'Lou Lane' }, { name: 'Max Moss' }] });
  const [lou, max] = w.people;
  const bot = new ParleyClient({ urls: [`ws://127.0.0.1:${env.gw2Port}/`], token: max.token, WebSocket });
  await bot.connect();
  await bot.join(w.room.id);
  for (let i = 0; i < N; i += 500) {
    const batch = [];
    for (let k = i; k < i + 500; k++) batch.push(bot.send(w.room.id, `message ${k + 1}`).done);
    await Promise.all(batch);
  }
  bot.close();

  const l = await openAs(browser, env.gw1, lou, `/w/${w.ws}/r/${w.room.id}`);
  const list = l.page.locator('.messages');
  await l.page.locator('.msg', { hasText: `message ${N}` }).waitFor({ timeout: T });
  const rendered = await l.page.locator('.messages .msg').count();
  assert.ok(rendered > 5 && rendered < 80, `rendered ${rendered} messages`);

  // Scroll up step by step: older pages load above, and the message at the
  // top of the view stays where it was each time.
  for (let step = 0; step < 30; step++) {
    const before = await l.page.evaluate(() => {
      const el = document.querySelector('.messages');
      const top = el.getBoundingClientRect().top;
      const first = [...el.querySelectorAll('.msg[data-seq]')].find((m) => m.getBoundingClientRect().bottom > top + 1);
      return { seq: first.dataset.seq, y: first.getBoundingClientRect().top };
    });
    await list.evaluate((el) => {
      el.scrollTop = Math.max(0, el.scrollTop - 400);
    });
    await l.page.waitForTimeout(300);
    const moved = await l.page.evaluate((seq) => {
      const m = document.querySelector(`.msg[data-seq="${seq}"]`);
      return m ? m.getBoundingClientRect().top : null;
    }, before.seq);
    // Scrolled up by 400 px: the earlier top item is 400 px lower, whether
    // or not a page of older messages was added above meanwhile.
    assert.notEqual(moved, null, `step ${step}: message ${before.seq} left the page`);
    assert.ok(Math.abs(moved - before.y - 400) < 80, `step ${step}: moved from ${before.y} to ${moved}`);
  }
  const state = await list.evaluate((el) => ({ top: el.scrollTop, height: el.scrollHeight, client: el.clientHeight }));
  assert.ok(state.top + state.client < state.height - 1000, `not at the bottom: ${JSON.stringify(state)}`);
  const stillRendered = await l.page.locator('.messages .msg').count();
  assert.ok(stillRendered < 100, `rendered ${stillRendered} messages`);
  const oldest = await l.page.locator('.messages .msg[data-seq]').first().getAttribute('data-seq');
  assert.ok(Number(oldest) < N - 100, `paged back to seq ${oldest}: older than the first page`);
  await shot(l.page, 'scroll-back');
  assert.deepEqual(l.errors, []);
  await l.context.close();
});
