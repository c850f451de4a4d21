// Every error code of PROTOCOL.md (section 5), API.md ("Errors") and the
// SDK has a human message in the people's client's one table.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { MESSAGES, humanError } from '../app/errors.mjs';
import { CLIENT_ERROR_CODES, SERVER_ERROR_CODES } from '../sdk/parley.mjs';

const doc = (p) => readFileSync(new URL(`../../protocol/${p}`, import.meta.url), 'utf8');

/** The backquoted codes in the given column of the markdown table under heading. */
function tableCodes(md, heading, column) {
  const start = md.indexOf(heading);
  assert.ok(start >= 0, `heading ${heading}`);
  const codes = new Set();
  let inTable = false;
  for (const line of md.slice(start).split('\n').slice(1)) {
    if (line.startsWith('|')) {
      inTable = true;
      const cell = line.split('|')[column + 1] || '';
      for (const m of cell.matchAll(/`([a-z_]+)`/g)) codes.add(m[1]);
    } else if (inTable) break;
  }
  return codes;
}

test('every PROTOCOL.md error code has a message', () => {
  const codes = tableCodes(doc('PROTOCOL.md'), '## 5. Error codes', 0);
  assert.ok(codes.size >= 25, `found ${codes.size}`);
  for (const c of codes) assert.ok(MESSAGES[c], `no message for ${c}`);
  for (const c of SERVER_ERROR_CODES) assert.ok(MESSAGES[c], `no message for SDK server code ${c}`);
});

test('every API.md error code has a message', () => {
  const codes = tableCodes(doc('API.md'), '## Errors', 1);
  assert.ok(codes.size >= 20, `found ${codes.size}`);
  for (const c of codes) assert.ok(MESSAGES[c], `no message for ${c}`);
});

test("the SDK's own codes and the page's have messages; details are kept where they matter", () => {
  for (const c of [...CLIENT_ERROR_CODES, 'network']) assert.ok(MESSAGES[c], `no message for ${c}`);
  assert.equal(humanError({ code: 'room_locked', message: 'x' }), MESSAGES.room_locked);
  assert.match(humanError({ code: 'slow_mode', message: 'wait 7 s' }), /wait 7 s/);
  assert.match(humanError({ code: 'something_new' }), /Something went wrong/);
});
