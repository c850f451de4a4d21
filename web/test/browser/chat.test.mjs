// The people's client in a real browser against the real gateways: two
// people on two gateways chat, like and see "seen by" live; a dialogue's
// sort by rating follows stars from two people; hostile bodies render as
// text; a held message shows to its sender as held.
import assert from 'node:assert/strict';
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

/** The room's message bodies as the page shows them, in order. */
const bodies = (page) => page.locator('.messages .msg:not(.outgoing) .body').allTextContents();

/** Sends text from the page's composer (Enter). */
async function say(page, text, composer = '#composer') {
  await page.fill(composer, text);
  await page.press(composer, 'Enter');
}

test('two people on two gateways chat, like and see "seen by" live', async () => {
  const w = await world({ people: [{ name: 'Ana Alvarez' }, { name: 'Ben Brown' }], rooms: [{ name: 'general' }] });
  const [ana, ben] = w.people;
  const route = `/w/${w.ws}/r/${w.room.id}`;
  const a = await openAs(browser, env.gw1, ana, route);
  const b = await openAs(browser, env.gw2, ben, route);
  for (const p of [a.page, b.page]) await p.locator('.conn[data-state="open"]').waitFor({ timeout: T });

  await say(a.page, 'Hello Ben, from gateway one');
  const benSees = b.page.locator('.msg', { hasText: 'Hello Ben, from gateway one' });
  await benSees.waitFor({ timeout: T });
  assert.equal(await benSees.locator('.sender').textContent(), 'Ana Alvarez');

  await say(b.page, 'Hi Ana, gateway two here');
  await a.page.locator('.msg', { hasText: 'Hi Ana, gateway two here' }).waitFor({ timeout: T });
  assert.deepEqual(await bodies(a.page), ['Hello Ben, from gateway one', 'Hi Ana, gateway two here']);
  assert.deepEqual(await bodies(b.page), ['Hello Ben, from gateway one', 'Hi Ana, gateway two here']);

  // Ben likes Ana's message: Ana's page shows the count without reloading.
  await benSees.locator('button.like').click();
  const anaMsg = a.page.locator('.msg.mine', { hasText: 'Hello Ben, from gateway one' });
  await anaMsg.locator('button.like .count', { hasText: '1' }).waitFor({ timeout: T });
  assert.equal(await benSees.locator('button.like').getAttribute('aria-pressed'), 'true');

  // Ben has read it (his page showed it): Ana's latest message says so.
  await say(a.page, 'Did you see this?');
  const latest = a.page.locator('.msg.mine', { hasText: 'Did you see this?' });
  await b.page.locator('.msg', { hasText: 'Did you see this?' }).waitFor({ timeout: T });
  await latest.locator('.seen-by', { hasText: 'Seen by 1 of 1' }).waitFor({ timeout: T });
  await latest.locator('.seen-by').click();
  assert.deepEqual(await latest.locator('.seen-list li').allTextContents(), ['Ben Brown']);

  for (const p of [a.page, b.page]) assert.equal(await p.locator('.error:visible, .jump').count(), 0, 'no error, nothing unread');
  await shot(a.page, 'chat-laptop');
  await b.page.setViewportSize({ width: 390, height: 844 });
  await shot(b.page, 'chat-phone');
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});

test('a dialogue entry rated by two people moves up in the sort by rating', async () => {
  const w = await world({
    people: [{ name: 'Cleo Carter' }, { name: 'Dev Dutta' }],
    rooms: [{ name: 'ideas', kind: 'dialogue' }],
  });
  const [cleo, dev] = w.people;
  const route = `/w/${w.ws}/r/${w.room.id}`;
  const c = await openAs(browser, env.gw1, cleo, route);
  const d = await openAs(browser, env.gw2, dev, route);
  await say(c.page, 'Older idea: a quiet room', '#entry-composer');
  await c.page.locator('.entry', { hasText: 'Older idea' }).waitFor({ timeout: T });
  await say(c.page, 'Newer idea: weekly summaries', '#entry-composer');
  const entryTexts = (page) => page.locator('.entry > article > .body').allTextContents();
  await d.page.locator('.entry', { hasText: 'Newer idea' }).waitFor({ timeout: T });

  // Dev sorts by rating: nothing is rated yet, so newest first.
  await d.page.selectOption('#sort', 'rating');
  await d.page.waitForFunction(
    () => document.querySelector('.entry .body')?.textContent.startsWith('Newer'),
    null,
    { timeout: T },
  );
  assert.deepEqual(await entryTexts(d.page), ['Newer idea: weekly summaries', 'Older idea: a quiet room']);

  // Two people rate the older entry: it goes first, live, on Dev's page.
  const older = (page) => page.locator('.entry', { hasText: 'Older idea' });
  await older(c.page).getByRole('button', { name: '5 stars', exact: true }).click();
  await older(d.page).getByRole('button', { name: '4 stars', exact: true }).click();
  await d.page.waitForFunction(
    () => document.querySelector('.entry .body')?.textContent.startsWith('Older'),
    null,
    { timeout: T },
  );
  assert.deepEqual(await entryTexts(d.page), ['Older idea: a quiet room', 'Newer idea: weekly summaries']);
  await older(d.page).locator('.avg', { hasText: '4.5 (2)' }).waitFor({ timeout: T });
  await older(c.page).locator('.avg', { hasText: '4.5 (2)' }).waitFor({ timeout: T });
  assert.equal(await older(d.page).getByRole('button', { name: '4 stars', exact: true }).getAttribute('aria-pressed'), 'true');

  // A reply to it, seen by the other.
  await older(d.page).getByRole('button', { name: /replies|reply/ }).click();
  const entrySeq = await older(d.page).getAttribute('data-seq');
  await say(d.page, 'Yes, and with a mute button', `#reply-${entrySeq}`);
  await older(c.page).getByRole('button', { name: '1 reply' }).waitFor({ timeout: T });
  await older(c.page).getByRole('button', { name: '1 reply' }).click();
  await older(c.page).locator('.reply', { hasText: 'Yes, and with a mute button' }).waitFor({ timeout: T });

  for (const p of [c.page, d.page]) assert.equal(await p.locator('.error:visible').count(), 0, 'no error shown');
  await shot(d.page, 'dialogue-by-rating');
  assert.deepEqual(c.errors, []);
  assert.deepEqual(d.errors, []);
  await c.context.close();
  await d.context.close();
});

test('hostile bodies render as text: no markup, no dialog, no request, no broken layout', async () => {
  const w = await world({ people: [{ name: 'Eve \u202Eevil' }, { name: 'Fay Fischer' }] });
  const [eve, fay] = w.people;
  const route = `/w/${w.ws}/r/${w.room.id}`;
  const hostile = [
    '<img src="/x-pwned.png" onerror="window.__pwned = 1; alert(1)">',
    '<a href="javascript:alert(2)">click me</a> javascript:alert(3)',
    '<script>window.__pwned = 2</script><style>body{display:none}</style>',
    'abc \u202E txet desrever \u202C def',
    'W'.repeat(4000),
  ];
  const e = await openAs(browser, env.gw1, eve, route);
  const f = await openAs(browser, env.gw2, fay, route, { width: 390, height: 844 });
  const dialogs = [];
  const requests = [];
  f.page.on('dialog', (dlg) => {
    dialogs.push(dlg.message());
    dlg.dismiss().catch(() => {});
  });
  f.page.on('request', (r) => requests.push(r.url()));
  for (const p of [e.page, f.page]) await p.locator('.conn[data-state="open"]').waitFor({ timeout: T });

  // Each arrives live at the bottom of Fay's list and shows exactly as typed
  // (the list renders a window, so each is checked as it arrives).
  for (const text of hostile) {
    await say(e.page, text);
    await f.page.waitForFunction(
      (t) => {
        const all = document.querySelectorAll('.messages .msg:not(.outgoing) .body');
        return all.length && all[all.length - 1].textContent === t;
      },
      text,
      { timeout: T },
    );
    const list = f.page.locator('.messages');
    assert.equal(await list.locator('img, script, a, style').count(), 0, 'no element came from a body');
  }
  await f.page.waitForTimeout(500); // an injected onerror would have fired by now
  assert.equal(await f.page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(
    requests.filter((u) => u.includes('pwned')),
    [],
  );
  // The 4,000-character word wraps inside the list: nothing overflows sideways.
  const overflow = await f.page.evaluate(() => {
    const el = document.querySelector('.messages');
    return { scroll: el.scrollWidth, client: el.clientWidth, doc: document.documentElement.scrollWidth };
  });
  assert.ok(overflow.scroll <= overflow.client, `list overflows: ${JSON.stringify(overflow)}`);
  assert.ok(overflow.doc <= 390, `page overflows: ${JSON.stringify(overflow)}`);
  // The sender's name with an RTL override is isolated text too.
  assert.equal(await f.page.locator('.msg .sender').first().textContent(), 'Eve \u202Eevil');
  await shot(f.page, 'hostile-phone');
  assert.deepEqual(e.errors, []);
  assert.deepEqual(f.errors, []);
  await e.context.close();
  await f.context.close();
});

test('a message held by the guidelines is shown to its sender as held, and to nobody else', async () => {
  const w = await world({ people: [{ name: 'Gus Admin', role: 'admin' }, { name: 'Hal Member' }, { name: 'Ivy Member' }] });
  const [gus, hal, ivy] = w.people;
  const rules = { rules: [{ id: 'review', kind: 'words', terms: ['refund'], action: 'hold' }] };
  const put = await http(env.gw1, 'PUT', `/workspaces/${w.ws}/guidelines`, rules, gus.token);
  assert.equal(put.status, 200, JSON.stringify(put.json));
  const route = `/w/${w.ws}/r/${w.room.id}`;
  const h = await openAs(browser, env.gw1, hal, route);
  const i = await openAs(browser, env.gw2, ivy, route);
  for (const p of [h.page, i.page]) await p.locator('.conn[data-state="open"]').waitFor({ timeout: T });

  await say(h.page, 'Can I get a refund for the workshop?');
  await say(h.page, 'Thanks for today');
  const held = h.page.locator('.msg.outgoing[data-state="held"]', { hasText: 'refund' });
  await held.waitFor({ timeout: T });
  assert.match(await held.locator('.status').textContent(), /Held for review/);
  await i.page.locator('.msg', { hasText: 'Thanks for today' }).waitFor({ timeout: T });
  assert.deepEqual(await bodies(i.page), ['Thanks for today']);

  // Still shown as held after a reload (from the pending list).
  await h.page.reload();
  await h.page.locator('.msg.outgoing[data-state="held"]', { hasText: 'refund' }).waitFor({ timeout: T });
  assert.deepEqual(await bodies(h.page), ['Thanks for today']);
  await shot(h.page, 'held-message');
  assert.deepEqual(h.errors, []);
  assert.deepEqual(i.errors, []);
  await h.context.close();
  await i.context.close();
});
