// The SDK's error codes are exactly the table of PROTOCOL.md section 5, and
// the backoff stays within its bounds. No server needed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  CLIENT_ERROR_CODES,
  ParleyClient,
  ParleyError,
  SERVER_ERROR_CODES,
  backoffDelay,
  newClientMsgId,
} from '../parley.mjs';

const spec = readFileSync(new URL('../../../protocol/PROTOCOL.md', import.meta.url), 'utf8');

test('every error code of PROTOCOL.md section 5, in its order, and no other', () => {
  const section = spec.split(/^## 5\. Error codes$/m)[1].split(/^## /m)[0];
  const codes = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.ok(codes.length > 20, 'the table was found');
  assert.deepEqual([...SERVER_ERROR_CODES], codes);
  for (const c of CLIENT_ERROR_CODES) assert.ok(!codes.includes(c), `${c} is the SDK's own`);
});

test('ParleyError carries the code, and retryable follows the spec', () => {
  const e = new ParleyError('unavailable', 'storage down', { op: 'send', room: 'r' });
  assert.ok(e instanceof Error);
  assert.equal(e.code, 'unavailable');
  assert.equal(e.op, 'send');
  assert.equal(e.retryable, true);
  assert.equal(new ParleyError('busy').retryable, true);
  assert.equal(new ParleyError('forbidden').retryable, false);
  assert.equal(new ParleyError('guideline_violation').retryable, false);
});

test('backoff: full jitter below min(max, initial * 2^attempt)', () => {
  const b = { initialMs: 100, maxMs: 5000 };
  assert.equal(backoffDelay(0, b, () => 0), 0);
  assert.equal(backoffDelay(0, b, () => 0.999999), 99);
  assert.equal(backoffDelay(3, b, () => 0.5), 400);
  assert.equal(backoffDelay(20, b, () => 0.999999), 4999);
  assert.equal(backoffDelay(1000, b, () => 0.5), 2500);
});

test('client_msg_id: fresh, within the 64-byte limit', () => {
  const ids = new Set(Array.from({ length: 1000 }, newClientMsgId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('a send before any join fails at once with not_joined, and nothing waits', async () => {
  const c = new ParleyClient({ urls: 'ws://127.0.0.1:9/', token: 't', WebSocket: class {} });
  const out = c.send('6f1c7d1e-0000-4000-8000-000000000000', 'hi');
  assert.equal(out.state, 'failed');
  await assert.rejects(out.done, (e) => e instanceof ParleyError && e.code === 'not_joined');
  assert.deepEqual(c.pendingSends(), []);
});

test('constructor refuses a missing WebSocket, token or url', () => {
  assert.throws(() => new ParleyClient({ urls: [], token: 't', WebSocket: class {} }), TypeError);
  assert.throws(() => new ParleyClient({ urls: 'ws://x/', token: '', WebSocket: class {} }), TypeError);
  const saved = globalThis.WebSocket;
  globalThis.WebSocket = undefined;
  try {
    assert.throws(() => new ParleyClient({ urls: 'ws://x/', token: 't' }), /WebSocket/);
  } finally {
    globalThis.WebSocket = saved;
  }
});
