// The browser tests' harness: the integration environment written by
// tests/integration/env.sh (two real gateways serving web/, PostgreSQL,
// Redis), `parleyd admin` for fixtures, Debian's chromium through
// playwright-core, screenshots and a console-error collector.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');

/**
 * The environment of $PARLEY_ENV_FILE (KEY=VALUE lines, values may be
 * double-quoted), with the gateways' base URLs.
 * @returns {{gw1: string, gw2: string, ws1: string, ws2: string, pg: string,
 *   parleyd: string, operatorToken: string, raw: Record<string, string>}}
 */
export function readEnv() {
  const file = process.env.PARLEY_ENV_FILE;
  if (!file) throw new Error('PARLEY_ENV_FILE is not set: run through ctest');
  const raw = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) raw[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return {
    gw1: `http://127.0.0.1:${raw.GW1_PORT}`,
    gw2: `http://127.0.0.1:${raw.GW2_PORT}`,
    ws1: `ws://127.0.0.1:${raw.GW1_PORT}/`,
    ws2: `ws://127.0.0.1:${raw.GW2_PORT}/`,
    pg: raw.PARLEY_PG,
    parleyd: raw.PARLEYD,
    operatorToken: raw.OPERATOR_TOKEN_FILE ? readFileSync(raw.OPERATOR_TOKEN_FILE, 'utf8').trim() : '',
    raw,
  };
}

/**
 * `parleyd admin --pg ... args`: its standard output, trimmed. Data given on
 * stdin (set-password reads the password there) goes in `opts.input`.
 * @param {...(string|{input: string})} args
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

/** Headless Debian chromium (or $CHROMIUM). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** Saves a full-page screenshot as <screens>/<name>.png; returns its path. */
export async function shot(page, name) {
  const dir = process.env.PARLEY_SCREENS || join(repo, 'build', 'screens');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Collects the page's console errors and warnings and its uncaught
 * exceptions: tests assert the array stays empty.
 * @returns {string[]}
 */
export function collectConsole(page) {
  const seen = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') seen.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.push(`pageerror: ${e.message}`));
  return seen;
}
