// The SDK against the real integration environment: two parleyd gateways,
// PostgreSQL and Redis (tests/integration/env.sh). Fixtures come from
// `parleyd admin`. Network loss is a real dropped TCP connection.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { ParleyError } from '../parley.mjs';
import {
  GW,
  SLOW,
  closeAll,
  client,
  collect,
  envSh,
  lossyWebSocket,
  range,
  seqs,
  sleep,
  waitFor,
  world,
} from './helpers.mjs';

after(closeAll);

const isCode = (code) => (e) => {
  assert.ok(e instanceof ParleyError, `a ParleyError, got ${e}`);
  assert.equal(e.code, code);
  return true;
};

/** Sends until the outcome is `want` (a code, or 'ok'): moderation settings
 * reach the other gateway a moment later. Returns the last outcome. */
async function sendUntil(c, room, want) {
  let got = '';
  for (let i = 0; i < 40 * SLOW && got !== want; i++) {
    got = await c
      .send(room, 'are we there yet')
      .done.then(() => 'ok')
      .catch((e) => e.code);
    if (got !== want) await sleep(50);
  }
  return got;
}

/** Two connected, joined clients (a on gateway ga, b on gateway gb). */
async function pair(w, o = {}) {
  const a = client(w.people[0].token, { gateways: [o.ga ?? 0], ...o.a });
  const b = client(w.people[1].token, { gateways: o.gb ?? [1, 0], ...o.b });
  await Promise.all([a.connect(), b.connect()]);
  await a.join(w.room);
  await b.join(w.room);
  return { a, b };
}

test("two clients on two gateways see each other's messages in one order", async () => {
  const w = world();
  const { a, b } = await pair(w);
  const ga = collect(a, w.room);
  const gb = collect(b, w.room);
  const outs = [];
  for (let i = 0; i < 20; i++) {
    outs.push(a.send(w.room, `a${i}`));
    outs.push(b.send(w.room, `b${i}`));
  }
  await Promise.all(outs.map((o) => o.done));
  await waitFor(() => ga.length >= 40 && gb.length >= 40, 15000, '40 messages each');
  await sleep(100 * SLOW);
  assert.deepEqual(seqs(ga), range(1, 40));
  assert.deepEqual(seqs(gb), range(1, 40));
  assert.deepEqual(
    ga.map((m) => m.body),
    gb.map((m) => m.body),
  );
  // Each sender's messages keep the order they were sent in.
  const mine = (list, p, pre) => list.filter((m) => m.sender === p.id).map((m) => m.body);
  assert.deepEqual(mine(gb, w.people[0]), range(0, 19).map((i) => `a${i}`));
  assert.deepEqual(mine(ga, w.people[1]), range(0, 19).map((i) => `b${i}`));
  for (const o of outs) {
    assert.equal(o.state, 'acknowledged');
    assert.equal(o.ack.duplicate, false);
    assert.equal(ga.find((m) => m.client_msg_id === o.clientMsgId).seq, o.seq);
  }
});

test('a dropped socket reconnects to the other gateway and recovers: no gap, no duplicate', async () => {
  const w = world();
  const lossy = lossyWebSocket();
  const { a, b } = await pair(w, { gb: [1, 0], b: { WebSocket: lossy.WebSocket } });
  const gb = collect(b, w.room);
  const recoveries = [];
  b.on('recovery', (r) => recoveries.push(r));
  const outs = [];
  for (let i = 0; i < 60; i++) {
    outs.push(a.send(w.room, `m${i}`));
    if (i === 15) lossy.current().cut(); // while messages are flowing
    if (i % 4 === 0) await sleep(5);
  }
  await Promise.all(outs.map((o) => o.done));
  await waitFor(() => gb.length >= 60, 15000, 'b to catch up');
  await sleep(200 * SLOW);
  assert.deepEqual(seqs(gb), range(1, 60));
  assert.deepEqual(
    gb.map((m) => m.body),
    range(0, 59).map((i) => `m${i}`),
  );
  assert.equal(b.stats.sessions, 2);
  assert.ok(lossy.sockets[1].url.includes(`:${GW[0]}/`), 'the second connection went to gateway 1');
  assert.equal(recoveries.length, 1);
  assert.equal(recoveries[0].recovered, true);
  assert.ok(recoveries[0].since >= 0 && recoveries[0].since < 60);
  assert.equal(b.lastSeq(w.room), 60);
});

test('a hole in the stream is not shown: the client reconnects and recovers it', async () => {
  const w = world();
  const lossy = lossyWebSocket();
  const { a, b } = await pair(w, { b: { WebSocket: lossy.WebSocket } });
  const gb = collect(b, w.room);
  lossy.current().dropFrame((text) => text.includes('"seq":4,'));
  for (let i = 1; i <= 8; i++) await a.send(w.room, `g${i}`).done;
  await waitFor(() => gb.length >= 8, 10000, 'b to have 8');
  await sleep(200 * SLOW);
  assert.deepEqual(seqs(gb), range(1, 8));
  assert.equal(b.stats.gaps, 1);
  assert.equal(b.stats.sessions, 2);
  assert.equal(lossy.sockets.length, 2);
});

test('a send made while disconnected is delivered exactly once after reconnect, same client_msg_id', async () => {
  const w = world();
  const lossy = lossyWebSocket();
  const { a, b } = await pair(w, { b: { WebSocket: lossy.WebSocket } });
  const ga = collect(a, w.room);
  const gb = collect(b, w.room);
  const states = [];
  let out = null;
  let queued = null;
  b.on('state', (s) => {
    // Sent from inside the event: b is certainly between connections. What
    // it holds is read here too: by the time the test looks again, b may
    // have reconnected and the send been acknowledged (a lone send commits
    // on the gateway's next loop turn).
    if (s.state === 'reconnecting' && !out) {
      out = b.send(w.room, 'written offline');
      states.push([b.state, out.state]);
      queued = b.pendingSends();
    }
  });
  b.on('outgoing', (o) => o === out && states.push(o.state));
  lossy.current().cut();
  await waitFor(() => out !== null, 5000, 'the disconnect');
  assert.deepEqual(states[0], ['reconnecting', 'pending']);
  assert.deepEqual(queued, [out]);
  const ack = await out.done;
  assert.equal(ack.duplicate, false);
  assert.deepEqual(states, [['reconnecting', 'pending'], 'acknowledged']);
  await waitFor(() => ga.length >= 1 && gb.length >= 1, 10000, 'delivery');
  await sleep(300 * SLOW);
  for (const list of [ga, gb]) {
    assert.equal(list.length, 1);
    assert.equal(list[0].client_msg_id, out.clientMsgId);
    assert.equal(list[0].seq, out.seq);
    assert.equal(list[0].body, 'written offline');
  }
  assert.deepEqual(b.pendingSends(), []);
});

test('a send whose answer was lost is sent again with the same id: stored and delivered once', async () => {
  const w = world();
  const lossy = lossyWebSocket();
  const { a, b } = await pair(w, { b: { WebSocket: lossy.WebSocket } });
  const ga = collect(a, w.room);
  const gb = collect(b, w.room);
  a.send(w.room, 'before');
  await waitFor(() => gb.length === 1, 5000, 'the first message');
  lossy.current().blackhole(); // what the server answers from now on is lost
  const out = b.send(w.room, 'answer lost');
  await waitFor(() => ga.some((m) => m.client_msg_id === out.clientMsgId), 5000, 'the message stored');
  assert.equal(out.state, 'pending');
  lossy.current().cut();
  const ack = await out.done;
  assert.equal(ack.duplicate, true, 'the retry found the stored message');
  assert.equal(out.attempts, 2);
  assert.equal(out.seq, 2);
  await sleep(300 * SLOW);
  assert.deepEqual(seqs(ga), [1, 2]);
  assert.deepEqual(seqs(gb), [1, 2], 'b got its own message once, by recovery');
  assert.equal(gb[1].client_msg_id, out.clientMsgId);
});

test('leave: a send still waiting fails with not_joined, nothing is stored, the room falls silent', async () => {
  const w = world();
  const lossy = lossyWebSocket();
  const { a, b } = await pair(w, { b: { WebSocket: lossy.WebSocket } });
  const ga = collect(a, w.room);
  const gb = collect(b, w.room);
  let out = null;
  let left = null;
  b.on('state', (s) => {
    if (s.state === 'reconnecting' && !out) {
      out = b.send(w.room, 'never sent');
      left = b.leave(w.room);
    }
  });
  lossy.current().cut();
  await waitFor(() => out !== null, 5000, 'the disconnect');
  await assert.rejects(out.done, isCode('not_joined'));
  assert.deepEqual(await left, { room: w.room });
  assert.deepEqual(b.rooms(), []);
  await waitFor(() => b.state === 'open', 5000, 'the reconnection');
  await a.send(w.room, 'after').done;
  await waitFor(() => ga.length === 1, 5000, 'the message');
  await sleep(300 * SLOW);
  assert.deepEqual(
    ga.map((m) => m.body),
    ['after'],
  );
  assert.deepEqual(gb, []);
  await assert.rejects(b.history(w.room), isCode('not_joined'));
});

test('refusals surface as typed errors with their code; nothing is stored', async () => {
  const w = world({ roles: ['member', 'support'] });
  const other = world();
  const a = client(w.people[0].token);
  const s = client(w.people[1].token);
  await Promise.all([a.connect(), s.connect()]);
  assert.equal(s.session.role, 'support');
  await a.join(w.room);
  await s.join(w.room);
  const ga = collect(a, w.room);
  const seen = [];
  s.on('outgoing', (o) => seen.push(o.state));
  // A role that may not send (refused by the server).
  const out = s.send(w.room, 'support may not speak');
  await assert.rejects(out.done, isCode('forbidden'));
  assert.equal(out.state, 'failed');
  assert.equal(out.error.code, 'forbidden');
  assert.deepEqual(seen, ['pending', 'failed']);
  // Over max_body (the limit from the hello push).
  assert.equal(a.hello.max_body, 4096);
  const big = a.send(w.room, 'é'.repeat(2049));
  await assert.rejects(big.done, isCode('body_too_long'));
  // A room of another workspace is exactly "not found".
  await assert.rejects(a.join(other.room), isCode('room_not_found'));
  await assert.rejects(a.join('00000000-0000-4000-8000-000000000000'), isCode('room_not_found'));
  await assert.rejects(a.join(w.room), isCode('already_joined'));
  // Other ops' refusals.
  await assert.rejects(a.like(w.room, 99), isCode('no_such_message'));
  await assert.rejects(a.history(other.room), isCode('not_joined'));
  await assert.rejects(s.like(w.room, 1), (e) => e.code === 'forbidden' || e.code === 'no_such_message');
  const h = await a.history(w.room);
  assert.deepEqual(h.messages, []);
  assert.deepEqual(ga, []);
  // A bad token: connect() rejects, the client closes.
  const bad = client('x'.repeat(43));
  await assert.rejects(bad.connect(), isCode('auth_failed'));
  assert.equal(bad.state, 'closed');
});

test('history pages back to the start', async () => {
  const w = world();
  const { a, b } = await pair(w);
  const outs = range(1, 25).map((i) => a.send(w.room, `h${i}`));
  await Promise.all(outs.map((o) => o.done));
  const pages = [];
  for await (const page of b.olderHistory(w.room, { limit: 10 })) pages.push(seqs(page));
  assert.deepEqual(pages, [range(16, 25), range(6, 15), range(1, 5)]);
  const p = await b.history(w.room, { before: 6, limit: 5 });
  assert.deepEqual(seqs(p.messages), range(1, 5));
  assert.equal(p.has_more, false);
  const q = await b.history(w.room, { after: 20, limit: 3 });
  assert.deepEqual(seqs(q.messages), [21, 22, 23]);
  assert.equal(q.has_more, true);
  assert.equal(q.messages[0].body, 'h21');
  assert.equal(q.messages[0].sender, w.people[0].id);
});

test('too far behind: join with since says recovered false, and history fills the hole', async () => {
  const w = world();
  const { a, b } = await pair(w);
  await a.send(w.room, 'first').done;
  await waitFor(() => b.lastSeq(w.room) === 1, 5000, 'b at seq 1');
  const since = b.lastSeq(w.room);
  b.close();
  // The test gateways replay at most 200 messages.
  const outs = range(1, 205).map((i) => a.send(w.room, `x${i}`));
  await Promise.all(outs.map((o) => o.done));
  // a is on the gateway b2 joins: once a has 206, that gateway delivered it.
  await waitFor(() => a.lastSeq(w.room) === 206, 10000, 'delivery of 206');
  const b2 = client(w.people[1].token);
  const recoveries = [];
  b2.on('recovery', (r) => recoveries.push(r));
  const g2 = collect(b2, w.room);
  await b2.connect();
  const j = await b2.join(w.room, { since });
  assert.equal(j.recovered, false);
  assert.equal(j.lastSeq, 206);
  assert.deepEqual(recoveries, [{ room: w.room, since: 1, recovered: false, lastSeq: 206 }]);
  await a.send(w.room, 'live').done;
  await waitFor(() => g2.length === 1, 5000, 'the live message');
  assert.equal(g2[0].seq, 207);
  let filled = [];
  for await (const page of b2.olderHistory(w.room, { before: 207, limit: 100 })) {
    filled = page.concat(filled);
    if (page[0].seq <= since + 1) break;
  }
  assert.deepEqual(seqs(filled.filter((m) => m.seq > since)), range(2, 206));
});

test('reads, likes, stars, dialogue entries and replies', async () => {
  const w = world({ rooms: [{ name: 'chat' }, { name: 'ideas', kind: 'dialogue' }] });
  const [chat, ideas] = w.rooms;
  const { a, b } = await pair(w);
  await a.join(ideas);
  await b.join(ideas);
  const votesA = [];
  a.on('votes', (v) => votesA.push(v));
  const readsA = [];
  a.on('read', (r) => readsA.push(r));

  const m1 = await a.send(chat, 'likeable').done;
  assert.equal(m1.seq, 1);
  const l1 = await b.like(chat, 1);
  assert.equal(l1.likes, 1);
  const l2 = await b.like(chat, 1);
  assert.equal(l2.likes, undefined, 'a second like changes nothing');
  await a.like(chat, 1);
  await waitFor(() => votesA.some((v) => v.target === 1 && v.likes === 2), 5000, 'the votes push');
  const r1 = await b.read(chat, 1);
  assert.equal(r1.up_to, 1);
  assert.equal((await b.read(chat, 0)).up_to, 1, 'the watermark does not go back');
  await waitFor(() => readsA.some((r) => r.person === w.people[1].id && r.up_to === 1), 5000, 'the read push');
  const un = await b.unread();
  assert.equal(un.rooms.find((r) => r.room === chat).unread, 0);
  assert.equal(un.rooms.find((r) => r.room === chat).up_to, 1);
  await assert.rejects(a.rate(chat, 1, 3), isCode('ratings_not_allowed'));

  const gi = collect(a, ideas);
  const entry = a.send(ideas, 'an idea');
  await entry.done;
  const reply = b.send(ideas, 'a reply', { parent: entry.seq });
  await reply.done;
  await waitFor(() => gi.length === 2, 5000, 'entry and reply pushes');
  assert.equal(gi[0].kind, 'entry');
  assert.equal(gi[1].kind, 'reply');
  assert.equal(gi[1].parent, entry.seq);
  const bad = a.send(chat, 'not a dialogue', { parent: 1 });
  await assert.rejects(bad.done, isCode('bad_parent'));
  await assert.rejects(b.like(ideas, entry.seq), isCode('likes_not_allowed'));
  await assert.rejects(b.rate(ideas, entry.seq, 6), isCode('stars_out_of_range'));
  const s1 = await b.rate(ideas, entry.seq, 4);
  assert.equal(s1.stars, 1);
  const s2 = await a.rate(ideas, entry.seq, 2);
  assert.equal(s2.stars, 2);
  assert.equal(Number(s2.star_avg), 3);
  const seen = await b.seen(ideas, entry.seq);
  assert.equal(seen.seq, entry.seq);
  const list = await a.entries(ideas, { sort: 'rating' });
  assert.equal(list.entries.length, 1);
  assert.equal(list.entries[0].seq, entry.seq);
  assert.equal(list.entries[0].stars, 2);
  const mv = await b.myVotes();
  assert.deepEqual(
    mv.likes.map((l) => [l.room, l.seq]),
    [[chat, 1]],
  );
  assert.deepEqual(
    mv.ratings.map((r) => [r.room, r.seq, r.stars]),
    [[ideas, entry.seq, 4]],
  );
  await b.unrate(ideas, entry.seq);
  assert.deepEqual((await b.myVotes(ideas)).ratings, []);
});

test('presence, typing and moderation ops', async () => {
  const w = world({ roles: ['keyuser', 'member'] });
  const { a, b } = await pair(w);
  const typingA = [];
  a.on('typing', (t) => typingA.push(t));
  const deletesB = [];
  b.on('delete', (d) => deletesB.push(d));
  await waitFor(() => a.presence(w.room)?.count === 2, 10000, 'presence of both');
  assert.deepEqual(a.presence(w.room).online.map((p) => p.person).sort(), [w.people[0].id, w.people[1].id].sort());
  assert.equal((await b.typing(w.room)).sent, true);
  await waitFor(() => typingA.some((t) => t.person === w.people[1].id), 5000, 'the typing push');

  const m = await b.send(w.room, 'to be deleted').done;
  const d = await a.deleteMessage(w.room, m.seq, 'test');
  assert.equal(d.deleted, true);
  await waitFor(() => deletesB.some((x) => x.target === m.seq), 5000, 'the delete push');
  const h = await b.history(w.room);
  assert.equal(h.messages[0].deleted, true);
  assert.equal(h.messages[0].body, '');

  await a.mute(w.people[1].id, 60, { room: w.room, reason: 'test' });
  assert.equal(await sendUntil(b, w.room, 'muted'), 'muted');
  await a.unmute(w.people[1].id, { room: w.room });
  assert.equal(await sendUntil(b, w.room, 'ok'), 'ok');
  await assert.rejects(b.mute(w.people[0].id, 60), isCode('forbidden'));

  const st = await a.roomSettings(w.room, { locked: true });
  assert.equal(st.locked, true);
  assert.equal(await sendUntil(b, w.room, 'room_locked'), 'room_locked');
  const settings = [];
  b.on('settings', (x) => settings.push(x));
  await a.roomSettings(w.room, { locked: false });
  await waitFor(() => settings.some((x) => x.locked === false), 5000, 'the settings push');
  assert.deepEqual((await b.pendingMessages(w.room)).items, []);
  await assert.rejects(a.approve(w.room, 12345), isCode('no_such_pending'));
});

test('PostgreSQL down: the send is retried with the same id until stored, once', async () => {
  const w = world();
  const { a, b } = await pair(w, { a: { options: { maxSendAttempts: 1000 } } });
  const gb = collect(b, w.room);
  const refusals = [];
  envSh('stop-pg');
  let out;
  try {
    out = a.send(w.room, 'while postgres is down');
    out.done.catch(() => {});
    a.on('outgoing', (o) => o === out && o.error && refusals.push(o.error.code));
    await waitFor(() => refusals.length >= 1, 15000, 'an unavailable answer');
    assert.equal(out.state, 'pending');
  } finally {
    envSh('start-pg');
  }
  const ack = await out.done;
  assert.ok(refusals.every((c) => c === 'unavailable'), refusals.join());
  assert.ok(out.attempts >= 2);
  await waitFor(() => gb.length >= 1, 15000, 'delivery');
  await sleep(300 * SLOW);
  assert.equal(gb.length, 1);
  assert.equal(gb[0].client_msg_id, out.clientMsgId);
  assert.equal(gb[0].seq, ack.seq);
});
