// A gateway dies under its clients (SIGKILL: no close frame, no goodbye):
// they come back through the other gateway with jittered backoff and recover
// what they missed with `since`, each seq once and in order. And a `busy`
// answer's `retry_after_ms` is waited out before the next attempt.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, test } from 'node:test';
import WebSocket from 'ws';

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

/* A real parleyd made to answer an auth `busy`: one token look-up at a time
 * (--auth-inflight 1), a queue of one, and an auth queued longer than 10 ms
 * is told busy with the server's retry_after_ms (--auth-wait-ms 10). While
 * hold() keeps access_tokens locked, a filler's look-up stays in flight and
 * the next auth is answered busy; release() lets sign-ins through again. */
async function busyParleyd() {
  const port = await new Promise((res) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => res(p));
    });
  });
  const gw = spawn(
    ENV.PARLEYD,
    ['serve', '--port', String(port), '--pg', ENV.PARLEY_PG, '--redis', `127.0.0.1:${ENV.REDIS_PORT}`,
      '--auth-inflight', '1', '--auth-queue-max', '1', '--auth-wait-ms', '10', '--log-level', 'warn'],
    { stdio: 'ignore' },
  );
  const ready = async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
    } catch {
      return false;
    }
  };
  for (let t0 = Date.now(); !(await ready()); await sleep(50))
    if (Date.now() - t0 > 15000 * SLOW) throw new Error('the busy parleyd never became ready');
  let psql = null;
  let filler = null;
  const release = () => {
    if (psql) psql.stdin.end('COMMIT;\n');
    psql = null;
  };
  return {
    url: `ws://127.0.0.1:${port}/`,
    async hold(fillerToken) {
      psql = spawn('psql', ['-X', '-q', '-t', '-A', ENV.PARLEY_PG], { stdio: ['pipe', 'pipe', 'ignore'] });
      let out = '';
      psql.stdout.on('data', (d) => (out += d));
      psql.stdin.write('BEGIN; LOCK TABLE access_tokens IN ACCESS EXCLUSIVE MODE; SELECT 1;\n');
      await waitFor(() => out.includes('1'), 10000, 'the lock on access_tokens');
      filler = new WebSocket(`ws://127.0.0.1:${port}/`, PROTOCOL);
      await new Promise((r) => filler.on('open', r));
      filler.send(JSON.stringify({ id: 1, op: 'auth', token: fillerToken }));
      await sleep(100 * SLOW); // its look-up is in flight, held by the lock
    },
    release,
    close() {
      release();
      if (filler) filler.terminate();
      gw.kill('SIGTERM');
    },
  };
}

/* The ws package's WebSocket, noting when each socket was opened (the
 * client's attempts) and when an auth was answered busy, with its hint. */
function watchedWebSocket() {
  const opened = [];
  const busy = [];
  class Watched extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      opened.push({ url, t: Date.now() });
      this.on('message', (data) => {
        const m = JSON.parse(String(data));
        if (m.error && m.error.code === 'busy') busy.push({ t: Date.now(), hint: m.error.retry_after_ms });
      });
    }
  }
  return { WebSocket: Watched, opened, busy };
}

test('auth answered busy by parleyd: the next attempt waits at least its retry_after_ms, then signs in', async () => {
  const w = world();
  const busy = await busyParleyd();
  try {
    await busy.hold(w.people[1].token);
    const watch = watchedWebSocket();
    // The busy gateway first, the env's second: the client rotates.
    const c = client(w.people[0].token, {
      WebSocket: watch.WebSocket,
      options: { urls: [busy.url, `ws://127.0.0.1:${GW[1]}/`] },
    });
    const waits = [];
    c.on('state', (st) => st.retryInMs !== undefined && waits.push(st.retryInMs));
    const p = c.connect();
    await waitFor(() => watch.busy.length > 0, 10000, 'the busy answer');
    busy.release();
    const session = await p;
    const { t, hint } = watch.busy[0];
    assert.ok(hint >= 250, `retry_after_ms ${hint}`);
    // the wait is announced (a countdown can show it): hint plus jitter below initialMs
    assert.equal(waits.length, 1);
    assert.ok(waits[0] >= hint && waits[0] < hint + 50, `retryInMs ${waits[0]} for hint ${hint}`);
    assert.equal(session.person, w.people[0].id);
    assert.equal(watch.opened.length, 2);
    const after = watch.opened[1].t - t;
    assert.ok(after >= hint - 5, `next attempt ${after} ms after busy: the hint ${hint} was not waited out`);
    c.close();
  } finally {
    busy.close();
  }
});

test('the pause after a refusal: the hint plus jitter, or the jitter alone without a hint', async () => {
  const w = world();
  // With a hint: parleyd's busy answer, then the next attempt.
  const busy = await busyParleyd();
  let hinted;
  let hint;
  try {
    await busy.hold(w.people[1].token);
    const watch = watchedWebSocket();
    const c = client(w.people[0].token, {
      WebSocket: watch.WebSocket,
      options: { urls: [busy.url, `ws://127.0.0.1:${GW[1]}/`], random: () => 0.5 },
    });
    const p = c.connect();
    await waitFor(() => watch.busy.length > 0, 10000, 'the busy answer');
    busy.release();
    await p;
    hint = watch.busy[0].hint;
    hinted = watch.opened[1].t - watch.busy[0].t; // hint + 25 (half of initialMs 50)
    c.close();
  } finally {
    busy.close();
  }
  assert.ok(hinted >= hint + 20 && hinted < hint + 400 * SLOW, `with the hint ${hint}: ${hinted} ms`);
  // Without a hint: a refused connection (nothing listens there) is retried
  // after the jitter alone.
  const port = await new Promise((res) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => res(p));
    });
  });
  const watch = watchedWebSocket();
  const c = client(w.people[0].token, {
    WebSocket: watch.WebSocket,
    options: { urls: [`ws://127.0.0.1:${port}/`, `ws://127.0.0.1:${GW[1]}/`], random: () => 0.5 },
  });
  const closed = [];
  const first = () => watch.opened.length >= 1;
  const p = c.connect();
  await waitFor(first, 5000, 'the first attempt');
  await p;
  closed.push(watch.opened[1].t - watch.opened[0].t);
  c.close();
  assert.ok(closed[0] >= 20 && closed[0] < 400 * SLOW, `without a hint: ${closed[0]} ms`);
});

test('reconnect() while the server asked for a pause waits the pause out', async () => {
  const w = world();
  const busy = await busyParleyd();
  try {
    await busy.hold(w.people[1].token);
    const watch = watchedWebSocket();
    const c = client(w.people[0].token, {
      WebSocket: watch.WebSocket,
      options: { urls: [busy.url, `ws://127.0.0.1:${GW[1]}/`] },
    });
    const p = c.connect();
    await waitFor(() => watch.busy.length > 0, 10000, 'the busy answer');
    busy.release();
    c.reconnect(); // as the web client does on the browser's "online" event
    await p;
    const { t, hint } = watch.busy[0];
    const after = Date.now() - t;
    assert.ok(after >= hint - 10, `signed in ${after} ms after busy (hint ${hint})`);
  } finally {
    busy.close();
  }
});
