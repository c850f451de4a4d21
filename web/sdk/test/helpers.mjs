// Shared helpers of the SDK tests: the integration environment written by
// tests/integration/env.sh (two real gateways, PostgreSQL, Redis), fixtures
// made with `parleyd admin`, clients on the `ws` package, and a socket
// wrapper that lets a test lose the network under a client.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

import { ParleyClient } from '../parley.mjs';

/** KEY=VALUE lines of $PARLEY_ENV_FILE (values may be double-quoted). */
export function loadEnv() {
  const file = process.env.PARLEY_ENV_FILE;
  if (!file) throw new Error('PARLEY_ENV_FILE is not set: run through ctest (integration.sdk_node)');
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

export const ENV = loadEnv();
/* Gateways under valgrind (scripts/dev test's second pass) answer many
 * times slower: every wait stretches by this factor. */
export const SLOW = /valgrind/.test(process.env.GW_WRAPPER || '') ? 10 : 1;
export const GW = [Number(ENV.GW1_PORT), Number(ENV.GW2_PORT)];
export const wsUrl = (g) => `ws://127.0.0.1:${GW[g]}/`;
export const httpUrl = (g) => `http://127.0.0.1:${GW[g]}`;

/** `parleyd admin --pg ... args`: its first output line. */
export function admin(...args) {
  const out = execFileSync(ENV.PARLEYD, ['admin', '--pg', ENV.PARLEY_PG, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return out.split('\n')[0].trim();
}

/** Runs env.sh STATE cmd (stop-pg, start-pg, ...). */
export function envSh(cmd) {
  execFileSync(ENV.ENV_SH, [ENV.STATE_DIR, cmd], { stdio: 'ignore', env: { ...process.env, PARLEYD: ENV.PARLEYD } });
}

let worldCount = 0;

/**
 * A fresh workspace with rooms and people, each with a token.
 * @param {{roles?: string[], rooms?: {name?: string, kind?: string}[]}} [o]
 */
export function world(o = {}) {
  const tag = `${process.pid}-${Date.now()}-${++worldCount}`;
  const ws = admin('create-workspace', `sdk-${tag}`);
  const rooms = (o.rooms || [{}]).map((r, i) =>
    admin('create-room', ws, r.name || `room-${i}`, 'workspace', r.kind || 'chat'),
  );
  const people = (o.roles || ['member', 'member']).map((role, i) => {
    const id = admin('create-person', ws, `p${i}-${tag}@sdk.example`, role);
    return { id, role, token: admin('create-token', id, ws) };
  });
  return { ws, room: rooms[0], rooms, people };
}

/**
 * A WebSocket class (the ws package) whose sockets a test can disturb:
 * `blackhole()` stops delivering what arrives (an answer lost on the way),
 * `dropFrame(pred)` loses one frame (as a server bug would: a hole in the
 * stream), `cut()` drops the TCP connection without a close frame.
 */
export function lossyWebSocket() {
  const sockets = [];
  class LossyWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.swallow = false; // blackhole(): deliver nothing more
      this.dropIf = null; // dropFrame(): the frame to lose
      sockets.push(this);
    }

    set onmessage(fn) {
      super.onmessage = (ev) => {
        if (this.dropIf && this.dropIf(String(ev.data))) {
          this.dropIf = null;
          return;
        }
        if (!this.swallow) fn(ev);
      };
    }

    get onmessage() {
      return super.onmessage;
    }

    /** Drops the next incoming frame whose text satisfies pred. */
    dropFrame(pred) {
      this.dropIf = pred;
    }

    blackhole() {
      this.swallow = true;
    }

    cut() {
      this.terminate();
    }
  }
  return { WebSocket: LossyWebSocket, sockets, current: () => sockets[sockets.length - 1] };
}

const clients = new Set();

/** A client of the test gateways (urls: gateway indexes), quick to reconnect. */
export function client(token, o = {}) {
  const c = new ParleyClient({
    urls: (o.gateways || [0, 1]).map(wsUrl),
    token,
    WebSocket: o.WebSocket || WebSocket,
    backoff: { initialMs: 50, maxMs: 500 },
    requestTimeoutMs: 20000 * SLOW,
    connectTimeoutMs: 10000 * SLOW,
    pingIntervalMs: 20000 * SLOW,
    ...o.options,
  });
  clients.add(c);
  return c;
}

/** Closes every client made by client(). */
export function closeAll() {
  for (const c of clients) c.close();
  clients.clear();
}

/** Resolves once pred() is true (polled), or rejects after ms. */
export async function waitFor(pred, ms = 10000, what = 'condition') {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms * SLOW) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Collects the message pushes a client delivers for a room. */
export function collect(c, room) {
  const got = [];
  c.on('message', (m) => m.room === room && got.push(m));
  return got;
}

/** Asserts nothing: the seqs of list, to compare with deepEqual. */
export const seqs = (list) => list.map((m) => m.seq);

/** [a, a+1, ..., b] */
export const range = (a, b) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);
