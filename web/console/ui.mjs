// Pieces the console's views share: a section with a heading, a form's
// status line, confirmation of destructive actions, and people/rooms lookups.
import { api } from './api.mjs';
import { h, nameOf, put } from './dom.mjs';
import { humanError } from './errors.mjs';

/** A card with a heading. */
export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', null, title), ...children);
}

/** A status line under a form: ok(text), fail(error), busy(). */
export function status() {
  const el = h('p', { class: 'status', role: 'status' });
  return {
    el,
    ok(text) {
      el.className = 'status ok';
      el.textContent = text;
    },
    fail(e) {
      el.className = 'status error';
      el.setAttribute('role', 'alert');
      el.textContent = humanError(e);
    },
    busy(text = 'Saving…') {
      el.className = 'status';
      el.textContent = text;
    },
    clear() {
      el.textContent = '';
    },
  };
}

/** Runs an action from a button: disables it meanwhile, reports to st. */
export async function act(button, st, fn, okText) {
  if (button) button.disabled = true;
  st.busy();
  try {
    const r = await fn();
    if (okText) st.ok(okText);
    else st.clear();
    return r;
  } catch (e) {
    st.fail(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** The workspace's people (removed ones included for managers), by id. */
export async function loadPeople(ctx) {
  const r = await api('GET', ctx.path('/people'));
  const byId = new Map(r.items.map((p) => [p.id, p]));
  return { list: r.items, byId, name: (id) => (byId.has(id) ? nameOf(byId.get(id)) : id ? `${String(id).slice(0, 8)}…` : '—') };
}

/** The workspace's rooms (archived ones too). */
export async function loadRooms(ctx) {
  const r = await api('GET', ctx.path('/rooms?archived=true'));
  const byId = new Map(r.items.map((x) => [x.id, x]));
  return { list: r.items, byId, name: (id) => (byId.has(id) ? byId.get(id).name : id ? `${String(id).slice(0, 8)}…` : 'whole workspace') };
}

/** A table with a header row; rows are arrays of cells (nodes or text). */
export function table(caption, headers, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'muted empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', null,
    h('caption', { class: 'sr-only' }, caption),
    h('thead', null, h('tr', null, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, rows.map((r) => (r instanceof HTMLElement ? r : h('tr', null, r.map((c) => h('td', null, c))))))));
}

/** Asks before something that cannot be undone. */
export function confirmed(text) {
  return window.confirm(text);
}

export { put };
