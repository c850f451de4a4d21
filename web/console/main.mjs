// The consultant console (/console/): the shell - sign-in, the workspace
// switcher, navigation, the notice and live regions, the retrying state -
// and the views, each in its own module, rendered into <main>.
import { ParleyClient } from '../sdk/parley.mjs';
import { api, ApiError, onSessionExpired, session, wsPath } from './api.mjs';
import { field, h, nameOf, put } from './dom.mjs';
import { humanError } from './errors.mjs';
import { renderEvaluation, renderVisits } from './evaluation.mjs';
import { renderGuidelines } from './guidelines.mjs';
import { renderLog, renderModeration } from './moderation.mjs';
import { renderInvitations, renderPeople } from './people.mjs';
import { renderAvatars, renderRooms } from './rooms.mjs';
import { renderWorkspaces, renderSettings } from './workspaces.mjs';

const VIEWS = [
  ['settings', 'Workspace', renderSettings],
  ['people', 'People', renderPeople],
  ['invitations', 'Invitations', renderInvitations],
  ['rooms', 'Rooms', renderRooms],
  ['avatars', 'Avatars', renderAvatars],
  ['guidelines', 'Guidelines', renderGuidelines],
  ['moderation', 'Moderation queue', renderModeration],
  ['log', 'Moderation log', renderLog],
  ['evaluation', 'Evaluation', renderEvaluation],
  ['visits', 'Visit log', renderVisits],
];

const root = document.getElementById('app');
const liveEl = document.getElementById('live');

/** State shared by the shell across views. */
const state = {
  me: null, // GET /me of the session
  client: null, // the SDK client of the current workspace (moderation)
  clientWs: null, // ... and its workspace
  cleanup: null, // the current view's teardown
  retryTimer: null, // the retrying state's timer
  retryDelay: 2000, // its next delay
  renderSeq: 0, // drops the answers of views left meanwhile
  signInNote: '', // why the sign-in form is shown (an ended session), until the next sign-in
};

/** Announces text to screen readers (new held messages, saved changes). */
export function announce(text) {
  liveEl.textContent = '';
  setTimeout(() => {
    liveEl.textContent = text;
  }, 30);
}

function wsUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
}

/** The SDK client for workspace ws, made on first use. */
function clientFor(ws) {
  if (state.client && state.clientWs === ws) return state.client;
  if (state.client) state.client.close();
  const s = session.get();
  state.client = new ParleyClient({ urls: [wsUrl()], token: s.token, workspace: ws });
  state.clientWs = ws;
  state.client.on('error', (e) => {
    if (e && (e.code === 'auth_failed' || e.closeCode === 1008)) expire();
  });
  state.client.connect().catch((e) => {
    if (e && e.code === 'auth_failed') expire();
  });
  return state.client;
}

function closeClient() {
  if (state.client) state.client.close();
  state.client = null;
  state.clientWs = null;
}

function expire() {
  closeClient();
  session.clear();
  state.me = null;
  state.signInNote = 'Your session has ended. Please sign in again.';
  renderSignIn();
}
onSessionExpired(expire);

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  return { ws: parts[0] || null, view: parts[1] || 'people', arg: parts[2] || null };
}

export function go(ws, view) {
  location.hash = ws ? `#/${ws}/${view || 'people'}` : '#/';
}

function renderSignIn(message) {
  document.title = 'Sign in · Parley console';
  const err = h('p', { class: 'error', role: 'alert' }, message || state.signInNote);
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    class: 'card signin',
    onsubmit: async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      err.textContent = '';
      try {
        const r = await api('POST', '/auth/login', { email: email.value.trim(), password: pw.value }, { token: null });
        session.set({ token: r.token, person: r.person });
        state.me = null;
        state.signInNote = '';
        render();
      } catch (e) {
        err.textContent = humanError(e);
        btn.disabled = false;
      }
    },
  },
  h('h1', null, 'Parley console'),
  h('p', { class: 'muted' }, 'Sign in to run your workspaces.'),
  field('Email', email), field('Password', pw), btn, err);
  put(root, h('main', { id: 'main', class: 'center' }, form));
  email.focus();
}

function showRetrying(main, e, again) {
  clearTimeout(state.retryTimer);
  let left = Math.round(state.retryDelay / 1000);
  const line = h('p', null);
  const tick = () => {
    line.textContent = `${humanError(e)} Retrying in ${left} s.`;
  };
  tick();
  const retryNow = h('button', { type: 'button', onclick: () => again() }, 'Retry now');
  put(main, h('section', { class: 'card retrying', role: 'alert', 'aria-busy': 'true' },
    h('h2', null, 'Cannot reach the server'), line, retryNow));
  const step = () => {
    left -= 1;
    if (left <= 0) {
      state.retryDelay = Math.min(state.retryDelay * 2, 30000);
      again();
    } else {
      tick();
      state.retryTimer = setTimeout(step, 1000);
    }
  };
  state.retryTimer = setTimeout(step, 1000);
}

const RETRYING = new Set(['network', 'unavailable', 'busy', 'request_timeout', 'internal']);

async function render() {
  clearTimeout(state.retryTimer);
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch {
      // a view's teardown must not stop the next view
    }
    state.cleanup = null;
  }
  const seq = ++state.renderSeq;
  const s = session.get();
  if (!s) {
    closeClient();
    renderSignIn();
    return;
  }
  const { ws, view, arg } = route();
  const main = h('main', { id: 'main', tabindex: '-1' }, h('p', { class: 'muted' }, 'Loading…'));
  try {
    if (!state.me) state.me = await api('GET', '/me');
    if (seq !== state.renderSeq) return;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return; // expire() showed sign-in
    put(root, shell(null, null, main));
    showRetrying(main, e, render);
    return;
  }
  const workspaces = state.me.workspaces || [];
  const current = workspaces.find((w) => w.id === ws) || null;
  put(root, shell(current, view, main));
  if (!current) {
    closeClient();
    document.title = 'Workspaces · Parley console';
    state.cleanup = await guard(main, () => renderWorkspaces(ctxFor(null, main)), seq);
    return;
  }
  if (state.clientWs && state.clientWs !== current.id) closeClient();
  const v = VIEWS.find(([k]) => k === view) || VIEWS[1];
  document.title = `${v[1]} · ${current.name} · Parley console`;
  state.cleanup = await guard(main, () => v[2](ctxFor(current, main, arg)), seq);
}

async function guard(main, fn, seq) {
  try {
    const cleanup = await fn();
    state.retryDelay = 2000;
    return cleanup || null;
  } catch (e) {
    if (seq !== state.renderSeq) return null;
    if (e instanceof ApiError && e.status === 401) return null;
    if (RETRYING.has(e && e.code)) showRetrying(main, e, render);
    else put(main, h('section', { class: 'card', role: 'alert' }, h('h2', null, 'This page could not be shown'), h('p', null, humanError(e))));
    return null;
  }
}

/** What a view gets: the workspace, its element and the shell's services. */
function ctxFor(wsInfo, main, arg) {
  return {
    ws: wsInfo && wsInfo.id,
    wsInfo,
    me: state.me,
    main,
    arg,
    announce,
    client: () => clientFor(wsInfo.id),
    refreshMe: async () => {
      state.me = await api('GET', '/me');
    },
    go,
    rerender: render,
    path: (rest) => wsPath(wsInfo.id, rest),
  };
}

function shell(current, view, main) {
  const me = state.me;
  const workspaces = (me && me.workspaces) || [];
  const switcher = h('select', {
    'aria-label': 'Workspace',
    onchange: (ev) => go(ev.target.value || null, view === 'settings' ? 'settings' : view || 'people'),
  },
  h('option', { value: '' }, 'All workspaces…'),
  workspaces.map((w) => h('option', { value: w.id, selected: current && w.id === current.id }, `${w.name} (${w.role})`)));
  const nav = current
    ? h('nav', { class: 'side', 'aria-label': 'Console sections' },
      h('ul', null, VIEWS.map(([k, label]) => h('li', null,
        h('a', { href: `#/${current.id}/${k}`, 'aria-current': k === view ? 'page' : null }, label)))))
    : null;
  return h('div', { class: 'layout' },
    h('a', { class: 'skip', href: '#main', onclick: (ev) => { ev.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '#/' }, 'Parley console'),
      switcher,
      h('span', { class: 'who' }, me ? nameOf(me) : ''),
      h('button', {
        type: 'button',
        onclick: async () => {
          try {
            await api('POST', '/auth/logout');
          } catch {
            // signed out locally whatever the server says
          }
          closeClient();
          session.clear();
          state.me = null;
          render();
        },
      }, 'Sign out')),
    h('div', { class: 'body' }, nav, main));
}

window.addEventListener('hashchange', render);
window.addEventListener('online', () => {
  if (state.client) state.client.reconnect();
});
render();
