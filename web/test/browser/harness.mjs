// The browser tests' harness: the integration environment written by
// tests/integration/env.sh ($PARLEY_ENV_FILE: two gateways serving web/,
// PostgreSQL, Redis), `parleyd admin` for fixtures, Debian's Chromium
// through playwright-core, screenshots, and a collector of console
// errors and warnings (tests assert it stays empty).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../../..');

/** KEY=VALUE lines of a file (values may be double-quoted). */
function parseEnvFile(file) {
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/**
 * The environment: {gw1, gw2 (page URLs), gw1Port, gw2Port, pg, parleyd,
 * operatorToken, stateDir, envSh, raw (every KEY=VALUE)}.
 */
export function readEnv() {
  const file = process.env.PARLEY_ENV_FILE;
  if (!file) throw new Error('PARLEY_ENV_FILE is not set: run through ctest (integration.web_browser)');
  const raw = parseEnvFile(file);
  return {
    gw1: `http://127.0.0.1:${raw.GW1_PORT}`,
    gw2: `http://127.0.0.1:${raw.GW2_PORT}`,
    gw1Port: Number(raw.GW1_PORT),
    gw2Port: Number(raw.GW2_PORT),
    pg: raw.PARLEY_PG,
    parleyd: raw.PARLEYD,
    operatorToken: raw.OPERATOR_TOKEN_FILE ? readFileSync(raw.OPERATOR_TOKEN_FILE, 'utf8').trim() : null,
    stateDir: raw.STATE_DIR,
    envSh: raw.ENV_SH,
    raw,
  };
}

/* Gateways under valgrind answer many times slower: waits stretch by this. */
export const SLOW = /valgrind/.test(process.env.GW_WRAPPER || '') ? 10 : 1;

/**
 * `parleyd admin --pg ... args`: its standard output, trimmed.
 * @param {...string} args
 * @returns {string}
 */
export function admin(...args) {
  const env = readEnv();
  let input;
  if (args.length && typeof args[args.length - 1] === 'object') input = args.pop().input;
  return execFileSync(env.parleyd, ['admin', '--pg', env.pg, ...args], {
    encoding: 'utf8',
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  }).trim();
}

/** Runs `env.sh STATE cmd` (stop-gw1, start-gw1, stop-pg, ...). */
export function envSh(cmd) {
  const env = readEnv();
  execFileSync(env.envSh, [env.stateDir, cmd], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PARLEYD: env.parleyd },
  });
}

/** Headless Chromium (Debian's) through playwright-core. @returns {Promise<import('playwright-core').Browser>} */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** Where screenshots go: $PARLEY_SCREENS or <repo>/build/screens. */
export function screensDir() {
  const dir = process.env.PARLEY_SCREENS || join(REPO, 'build', 'screens');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Saves a screenshot as <screens>/<name>.png and returns its path. */
export async function shot(page, name) {
  const path = join(screensDir(), `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/**
 * Collects console errors and warnings and page errors of a page (and of
 * any page opened from it); tests assert the array stays empty.
 * @returns {string[]}
 */
export function collectConsole(page) {
  const out = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') out.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => out.push(`pageerror: ${e.message}`));
  return out;
}

let seq = 0;

// A random password no dictionary or context rule refuses. Random base64
// was refused now and then: cracklib calls a password with more than four
// neighbouring characters one apart (as in "aB" or "98") "too simplistic/
// systematic", so no two neighbours here are one apart (or equal); 0 of
// 100,000 refused by cracklib-check, against about 1 in 1,000 before.
function strongPassword() {
  const abc = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  let s = '';
  while (s.length < 16) {
    for (const b of randomBytes(32)) {
      const ch = abc[b % abc.length];
      const prev = s.slice(-1).toLowerCase(); // cracklib compares without case
      if (prev && Math.abs(ch.toLowerCase().charCodeAt(0) - prev.charCodeAt(0)) <= 1) continue;
      if (s.length < 16) s += ch;
    }
  }
  return `${s}#7`;
}

/**
 * A fresh workspace (made with `parleyd admin`): rooms and people with
 * passwords and display names. People are {id, email, password, token,
 * name}; rooms {id, name, kind}.
 * @param {{people?: {name?: string, role?: string}[], rooms?: {name?: string, kind?: string}[]}} [o]
 */
export async function world(o = {}) {
  const tag = `${process.pid}-${Date.now().toString(36)}-${++seq}`;
  const ws = admin('create-workspace', `Browser test ${tag}`);
  const rooms = (o.rooms || [{ name: 'general' }]).map((r, i) => {
    const name = r.name || `room-${i}`;
    const kind = r.kind || 'chat';
    return { id: admin('create-room', ws, name, 'workspace', kind), name, kind };
  });
  const people = (o.people || [{}, {}]).map((p, i) => {
    const email = `p${i}-${tag}@browser.example`;
    const id = admin('create-person', ws, email, p.role || 'member');
    const password = strongPassword();
    admin('set-password', email, { input: `${password}\n` });
    return { id, email, password, token: admin('create-token', id, ws), name: p.name || `Person ${i + 1}` };
  });
  const base = readEnv().gw1;
  for (const p of people) {
    const r = await http(base, 'PATCH', '/me', { display_name: p.name }, p.token);
    if (r.status !== 200) throw new Error(`PATCH /me: ${r.status} ${JSON.stringify(r.json)}`);
  }
  return { ws, rooms, room: rooms[0], people, tag };
}

/** Calls the HTTP API of a gateway. */
export async function http(base, method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/**
 * Opens a page of the app signed in as person (the session put in
 * localStorage before the app starts) at hash route.
 * @returns {Promise<{context, page, errors: string[]}>}
 */
export async function openAs(browser, base, person, route = '/', viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = collectConsole(page);
  const session = JSON.stringify({ token: person.token, person: person.id });
  await context.addInitScript((s) => {
    if (!localStorage.getItem('parley.session')) localStorage.setItem('parley.session', s);
  }, session);
  await page.goto(`${base}/#${route}`);
  return { context, page, errors };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
