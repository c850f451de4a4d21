// A gateway dies under its clients (SIGKILL: no close frame, no goodbye):
// they come back through the other gateway with jittered backoff and recover
// what they missed with `since`, each seq once and in order. And a `busy`
// answer's `retry_after_ms` is waited out before the next attempt.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { WebSocketServer } from 'ws';

import { PROTOCOL, backoffDelay, retryAfterOf } from '../parley.mjs';
import { ENV, GW, SLOW, closeAll, client, collect, envSh, range, seqs, sleep, waitFor, world } from './helpers.mjs';

after(closeAll);

const gw1Pid = () => Number(readFileSync(`${ENV.STATE_DIR}/gw1.pid`, 'utf8').trim());
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('backoff with a server hint: at least the hint, plus the jitter', () => {
  const b = { initialMs: 100, maxMs: 5000 };
  assert.equal(backoffDelay(0, b, () => 0, 700), 700);
  assert.equal(backoffDelay(0, b, () => 0.999999, 700), 799);
  assert.equal(backoffDelay(3, b, () => 0.5, 1000), 1400);
  assert.equal(retryAfterOf({ code: 'busy', retry_after_ms: 250 }), 250);
  assert.equal(retryAfterOf({ code: 'busy', retry_after_ms: 12.2 }), 13);
  // absent (today's server), nonsense, or absurd: no hint, or a bounded one
  assert.equal(retryAfterOf({ code: 'busy' }), 0);
  assert.equal(retryAfterOf({ code: 'busy', retry_after_ms: '5' }), 0);
  assert.equal(retryAfterOf({ code: 'busy', retry_after_ms: -3 }), 0);
  assert.equal(retryAfterOf({ code: 'busy', retry_after_ms: 1e12 }), 60000);
});

test('a gateway killed under its clients: all reconnect to the other and recover, no gap, no duplicate', async () => {
  const w = world({ roles: ['member', 'member', 'member', 'member', 'member'] });
  // The sender stays on gateway 2; four readers start on gateway 1 and may
  // rotate to gateway 2.
  const a = client(w.people[0].token, { gateways: [1] });
  const readers = w.people.slice(1).map((p) => client(p.token, { gateways: [0, 1] }));
  await Promise.all([a.connect(), ...readers.map((r) => r.connect())]);
  await a.join(w.room);
  for (const r of readers) await r.join(w.room);
  const got = readers.map((r) => collect(r, w.room));
  const recoveries = readers.map(() => []);
  readers.forEach((r, i) => r.on('recovery', (x) => recoveries[i].push(x)));
  const delays = [];
  for (const r of readers) r.on('state', (s) => s.state === 'reconnecting' && delays.push(s.retryInMs));

  const victim = gw1Pid();
  const N = 120;
  const outs = [];
  try {
    for (let i = 0; i < N; i++) {
      outs.push(a.send(w.room, `k${i}`));
      if (i === 30) {
        // Wait until the readers have some, so they have a since to give.
        await waitFor(() => got.every((g) => g.length >= 10), 10000, 'readers under way');
        process.kill(victim, 'SIGKILL');
      }
      if (i % 5 === 0) await sleep(10);
    }
    await Promise.all(outs.map((o) => o.done));
    await waitFor(() => got.every((g) => g.length >= N), 20000, 'every reader to catch up');
    await sleep(200 * SLOW);
  } finally {
    await waitFor(() => !alive(victim), 5000, 'gateway 1 to be gone');
    envSh('start-gw1'); // the next tests (and env.sh stop) have it back
  }
  for (let i = 0; i < readers.length; i++) {
    assert.deepEqual(seqs(got[i]), range(1, N), `reader ${i}: every seq once, in order`);
    assert.deepEqual(
      got[i].map((m) => m.body),
      range(0, N - 1).map((k) => `k${k}`),
    );
    assert.equal(readers[i].stats.sessions, 2, `reader ${i}: one new session`);
    assert.equal(readers[i].stats.gaps, 0);
    assert.equal(recoveries[i].length, 1);
    assert.equal(recoveries[i][0].recovered, true);
    // rejoined with since = what it had when the gateway died (some, not all)
    assert.ok(recoveries[i][0].since >= 10 && recoveries[i][0].since < N, `since ${recoveries[i][0].since}`);
    assert.equal(readers[i].lastSeq(w.room), N);
  }
  // Full jitter: the first retry is a random time below initialMs (50 ms here).
  assert.ok(delays.length >= 4 && delays.every((d) => d >= 0 && d < 50 * 2 ** 4), delays.join());
  assert.ok(new Set(delays).size > 1, `jittered, not all equal: ${delays.join()}`);
});

/* A stand-in for a gateway that admits no more sign-ins right now: it
 * answers every auth `busy` with the hint, as the wire contract says (today's
 * parleyd never refuses an auth this way, so a real one cannot be made to).
 * It notes when connections arrive and when it answered. */
async function busyGateway(retryAfterMs) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => PROTOCOL });
  await new Promise((r) => wss.on('listening', r));
  const seen = [];
  const answered = [];
  wss.on('connection', (sock) => {
    seen.push(Date.now());
    sock.on('message', (data) => {
      const m = JSON.parse(String(data));
      const error = { code: 'busy', message: 'sign-ins are admitted at the rate storage answers' };
      if (retryAfterMs !== null) error.retry_after_ms = retryAfterMs;
      if (m.op === 'auth') {
        answered.push(Date.now());
        sock.send(JSON.stringify({ id: m.id, error }));
      }
    });
  });
  return { url: `ws://127.0.0.1:${wss.address().port}/`, seen, answered, close: () => wss.close() };
}

test('auth answered busy with retry_after_ms: the next attempt waits at least that long, then signs in', async () => {
  const w = world();
  const busy = await busyGateway(600);
  try {
    // The busy gateway first, the real one second: the client rotates.
    const c = client(w.people[0].token, { options: { urls: [busy.url, `ws://127.0.0.1:${GW[1]}/`] } });
    const waits = [];
    c.on('state', (st) => st.retryInMs !== undefined && waits.push(st.retryInMs));
    const session = await c.connect();
    const after = Date.now() - busy.answered[0];
    // the wait is announced (a countdown can show it), hint plus jitter below initialMs
    assert.equal(waits.length, 1);
    assert.ok(waits[0] >= 600 && waits[0] < 650, `retryInMs ${waits[0]}`);
    assert.equal(session.person, w.people[0].id);
    assert.equal(busy.seen.length, 1);
    assert.ok(after >= 600, `signed in ${after} ms after busy: the hint was not waited out`);
    c.close();
  } finally {
    busy.close();
  }
});

test('the pause after busy: the hint plus jitter, or the jitter alone without a hint', async () => {
  // Two stand-ins in turn: the gap between one's answer and the next
  // connection at the other is the client's pause (no parleyd in between).
  const gap = async (hint, random) => {
    const [g1, g2] = [await busyGateway(hint), await busyGateway(hint)];
    try {
      const c = client('t', { options: { urls: [g1.url, g2.url], random } });
      c.connect().catch(() => {});
      await waitFor(() => g2.seen.length >= 1, 5000, 'the second attempt');
      c.close();
      return g2.seen[0] - g1.answered[0];
    } finally {
      g1.close();
      g2.close();
    }
  };
  const hinted = await gap(600, () => 0.5); // 600 + 25 (half of initialMs 50)
  assert.ok(hinted >= 620 && hinted < 1000 * SLOW, `with the hint: ${hinted} ms`);
  const plain = await gap(null, () => 0.5); // 25
  assert.ok(plain >= 20 && plain < 400 * SLOW, `without a hint: ${plain} ms`);
});

test('reconnect() while the server asked for a pause waits the pause out', async () => {
  const w = world();
  const busy = await busyGateway(800);
  try {
    const c = client(w.people[0].token, { options: { urls: [busy.url, `ws://127.0.0.1:${GW[1]}/`] } });
    const p = c.connect();
    await waitFor(() => busy.answered.length > 0, 5000, 'the busy answer');
    c.reconnect(); // as the web client does on the browser's "online" event
    await p;
    const after = Date.now() - busy.answered[0];
    assert.ok(after >= 790, `signed in ${after} ms after busy`);
  } finally {
    busy.close();
  }
});
