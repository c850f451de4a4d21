#!/usr/bin/env node
// An avatar bot on the Parley SDK: a FAQ persona that joins one room and
// answers questions it knows (a message with a question mark, or one that
// names it) with the matching answer. It never answers avatars, itself
// included, so two bots cannot talk each other into a loop.
//
// With an avatar token (an API token of an avatar, from
// POST /api/v1/workspaces/{ws}/avatars/{id}/tokens):
//
//   node web/examples/faq-bot.mjs --url ws://127.0.0.1:8080/ --token AVATAR_TOKEN --room general
//
// Against the demo workspace of `scripts/dev run` in one command: give the
// owner's token (the consultant's, printed at start) instead, and the bot
// creates its avatar (or reuses the one of the same name) and a token
// limited to the room through the HTTP API, then signs in with that token:
//
//   node web/examples/faq-bot.mjs --owner-token CONSULTANT_TOKEN
//
// Options (or environment variables): --url PARLEY_URL (comma-separated
// gateways; default ws://127.0.0.1:8080/), --token PARLEY_TOKEN,
// --owner-token PARLEY_OWNER_TOKEN, --room PARLEY_ROOM (id or name; default
// general), --name (the avatar's name; default "FAQ bot"), --faq FILE (JSON:
// [{"keywords": [...], "answer": "..."}]).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { ParleyClient } from '../sdk/parley.mjs';

const DEFAULT_FAQ = [
  { keywords: ['hours', 'open', 'available'], answer: 'We are available Monday to Friday, 9:00 to 17:00 (CET).' },
  { keywords: ['contact', 'reach', 'email'], answer: 'Write to your consultant in this room; they answer within one working day.' },
  { keywords: ['guideline', 'rules'], answer: "This room follows the workspace's communication guidelines; moderators may hold messages that break them." },
  { keywords: ['privacy', 'my data', 'export', 'erase'], answer: 'You can export or erase your data at any time: ask an admin of the workspace.' },
  { keywords: ['help', 'what can you'], answer: 'I answer common questions. Ask me about our hours, how to reach us, the guidelines or your data.' },
];
const UNKNOWN = "I don't know that one yet. Ask me about our hours, how to reach us, the guidelines or your data.";

// A token may begin with '-', which parseArgs would take for an option in
// "--token T": every option here takes a value, so the word after it is its
// value whatever it begins with.
const OPTIONS = ['url', 'token', 'owner-token', 'room', 'name', 'faq'];
const args = [];
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const takesValue = OPTIONS.includes(a.slice(2)) && a.startsWith('--');
  args.push(takesValue && i + 1 < process.argv.length ? `${a}=${process.argv[++i]}` : a);
}

const { values: opt } = parseArgs({
  args,
  options: {
    url: { type: 'string', default: process.env.PARLEY_URL || 'ws://127.0.0.1:8080/' },
    token: { type: 'string', default: process.env.PARLEY_TOKEN },
    'owner-token': { type: 'string', default: process.env.PARLEY_OWNER_TOKEN },
    room: { type: 'string', default: process.env.PARLEY_ROOM || 'general' },
    name: { type: 'string', default: 'FAQ bot' },
    faq: { type: 'string' },
  },
});

const die = (msg) => {
  console.error(`faq-bot: ${msg}`);
  process.exit(1);
};

const urls = opt.url.split(',').map((u) => u.trim()).filter(Boolean);
const faq = opt.faq ? JSON.parse(readFileSync(opt.faq, 'utf8')) : DEFAULT_FAQ;
const isUuid = (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s);

/* The HTTP API is on the gateway's port: ws://host:port/ -> http://host:port */
const httpBase = (() => {
  const u = new URL(urls[0]);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  return u.origin;
})();

async function api(token, method, path, body) {
  const res = await fetch(httpBase + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) die(`${method} ${path}: ${res.status} ${json?.error?.code}: ${json?.error?.message}`);
  return json;
}

async function findRoom(token, ws, room) {
  const list = await api(token, 'GET', `/api/v1/workspaces/${ws}/rooms`);
  const r = list.items.find((x) => x.id === room || x.name === room);
  if (!r) die(`no room "${room}" in workspace ${ws}`);
  return r;
}

/* One command against a workspace: the owner (or an admin) makes the
 * avatar and a token limited to the room; the bot then is that avatar. */
async function provision(ownerToken) {
  const me = await api(ownerToken, 'GET', '/api/v1/me');
  const ws = me.workspaces.find((w) => w.role === 'owner' || w.role === 'admin');
  if (!ws) die('the owner token manages no workspace (role owner or admin needed)');
  const room = await findRoom(ownerToken, ws.id, opt.room);
  const avatars = await api(ownerToken, 'GET', `/api/v1/workspaces/${ws.id}/avatars`);
  let avatar = avatars.items.find((a) => a.name === opt.name && !a.removed_at);
  if (!avatar) {
    avatar = await api(ownerToken, 'POST', `/api/v1/workspaces/${ws.id}/avatars`, {
      name: opt.name,
      persona: 'Answers frequently asked questions.',
    });
  }
  const tok = await api(ownerToken, 'POST', `/api/v1/workspaces/${ws.id}/avatars/${avatar.id}/tokens`, {
    rooms: [room.id],
  });
  return tok.token;
}

/** The answer to a message, or null when it is not a question for the bot. */
function answerFor(body, name) {
  const text = body.toLowerCase();
  const named = text.includes(name.toLowerCase()) || text.includes('@faq');
  if (!named && !text.includes('?')) return null;
  const hit = faq.find((f) => f.keywords.some((k) => text.includes(k.toLowerCase())));
  return hit ? hit.answer : UNKNOWN;
}

const WebSocket = globalThis.WebSocket || (await import('ws')).default;
let token = opt.token;
if (!token && opt['owner-token']) token = await provision(opt['owner-token']);
if (!token) die('give --token (an avatar token) or --owner-token (to create the avatar)');

const client = new ParleyClient({ urls, token, WebSocket });
client.on('state', (s) => s.state === 'reconnecting' && console.error(`faq-bot: reconnecting (${s.reason || s.closeCode})`));
client.on('error', (e) => console.error(`faq-bot: ${e.code}: ${e.message}`));
const session = await client.connect().catch((e) => die(`sign-in refused: ${e.code}: ${e.message}`));
if (session.role !== 'avatar') console.error(`faq-bot: warning: signed in as ${session.role}, not as an avatar`);
const roomId = isUuid(opt.room) ? opt.room : (await findRoom(token, session.workspace, opt.room)).id;
await client.join(roomId).catch((e) => die(`cannot join ${opt.room}: ${e.code}: ${e.message}`));

client.on('message', (m) => {
  // Not itself, no other bot, and in a dialogue room only entries (one level of replies).
  if (m.room !== roomId || m.sender === session.person || m.avatar || m.deleted || m.kind === 'reply') return;
  const answer = answerFor(m.body, opt.name);
  if (!answer) return;
  // One answer per question, even if the bot sees it twice: the id is the question's seq.
  const out = client.send(roomId, answer, {
    clientMsgId: `faq-${m.seq}`,
    parent: m.kind === 'entry' ? m.seq : undefined,
  });
  out.done.catch((e) => console.error(`faq-bot: answer to ${m.seq} failed: ${e.code}: ${e.message}`));
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    client.close();
    process.exit(0);
  });
}
console.log(`faq-bot: ready in room ${roomId} as ${session.person} (${session.role})`);
