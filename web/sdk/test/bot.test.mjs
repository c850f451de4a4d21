// The avatar bot example (web/examples/faq-bot.mjs) as a child process
// against the real gateways: it signs in as an avatar, joins a room and
// answers a question; it leaves other chatter alone.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

import { closeAll, client, collect, httpUrl, waitFor, world, wsUrl } from './helpers.mjs';

const BOT = fileURLToPath(new URL('../../examples/faq-bot.mjs', import.meta.url));
const children = new Set();

after(() => {
  closeAll();
  for (const c of children) c.kill('SIGTERM');
});

/** Starts the bot; resolves once it says it is ready. */
function startBot(args) {
  const child = spawn(process.execPath, [BOT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('faq-bot: ready')) resolve({ child, out: () => out, err: () => err });
    });
    child.on('exit', (code) => reject(new Error(`bot exited ${code}: ${err}`)));
  });
}

async function http(token, method, path, body) {
  const res = await fetch(httpUrl(0) + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json() };
}

test('the bot signs in with an avatar token, joins by room name and answers a question', async () => {
  const w = world({ roles: ['owner', 'member'], rooms: [{ name: 'general' }] });
  const owner = w.people[0].token;
  const av = await http(owner, 'POST', `/api/v1/workspaces/${w.ws}/avatars`, { name: 'FAQ bot' });
  assert.equal(av.status, 201, JSON.stringify(av.json));
  const tk = await http(owner, 'POST', `/api/v1/workspaces/${w.ws}/avatars/${av.json.id}/tokens`, { rooms: [w.room] });
  assert.equal(tk.status, 201, JSON.stringify(tk.json));
  const bot = await startBot(['--url', `${wsUrl(1)},${wsUrl(0)}`, '--token', tk.json.token, '--room', 'general']);
  assert.match(bot.out(), new RegExp(`as ${av.json.id} \\(avatar\\)`));

  const m = client(w.people[1].token, { gateways: [0] });
  await m.connect();
  await m.join(w.room);
  const got = collect(m, w.room);
  await m.send(w.room, 'hello everyone').done; // not a question: no answer
  const q = await m.send(w.room, 'What are your opening hours?').done;
  // The bot answers in order: an answer to the chatter would come first.
  await waitFor(() => got.some((x) => x.client_msg_id === `faq-${q.seq}`), 15000, 'the answer');
  const answers = got.filter((x) => x.sender === av.json.id);
  assert.equal(answers.length, 1);
  assert.equal(answers[0].avatar, true);
  assert.equal(answers[0].client_msg_id, `faq-${q.seq}`);
  assert.match(answers[0].body, /Monday to Friday/);
  assert.ok(answers[0].seq > q.seq);
});

test('one command with the owner token: the bot makes its avatar and answers in a dialogue room', async () => {
  const w = world({ roles: ['owner', 'member'], rooms: [{ name: 'ideas', kind: 'dialogue' }] });
  const bot = await startBot(['--url', wsUrl(0), '--owner-token', w.people[0].token, '--room', 'ideas']);
  assert.match(bot.out(), /\(avatar\)/);
  const m = client(w.people[1].token, { gateways: [1] });
  await m.connect();
  await m.join(w.room);
  const got = collect(m, w.room);
  const e = await m.send(w.room, 'How do I export my data?').done;
  await waitFor(() => got.some((x) => x.avatar), 15000, 'the answer');
  const a = got.find((x) => x.avatar);
  assert.equal(a.kind, 'reply');
  assert.equal(a.parent, e.seq);
  assert.match(a.body, /export or erase/);
  const avatars = await http(w.people[0].token, 'GET', `/api/v1/workspaces/${w.ws}/avatars`);
  assert.deepEqual(
    avatars.json.items.map((x) => x.name),
    ['FAQ bot'],
  );
});

test("a token that begins with '-' is read as the token, not as an option", () => {
  // Tokens are random base64url, so about one in 64 begins with '-'; the
  // bot's usage says "--token T". Nothing listens on port 9: the bot gets
  // past its options and fails to connect, within the timeout.
  const r = spawnSync(process.execPath, [BOT, '--url', 'ws://127.0.0.1:9/', '--token', '-abc', '--room', 'general'],
    { encoding: 'utf8', timeout: 3000 });
  const out = `${r.stdout}${r.stderr}`;
  assert.doesNotMatch(out, /ERR_PARSE_ARGS|Unknown option|argument missing/i, out);
});
