// My workspaces, a workspace's rooms with unread counts, and my profile.

import { html, useEffect, useRef, useState } from '../vendor/preact-htm.mjs';
import { api, personName, setSession } from './api.mjs';
import { closeClient } from './conn.mjs';
import { MyData } from './rights.mjs';
import { go } from './router.mjs';
import { ErrorLine, Field } from './ui.mjs';

const UNREAD_EVERY_MS = 10000; // unread counts of rooms not open are polled this often

/** Runs fn (an async loader) on mount and when deps change; retries network failures. */
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [retry, setRetry] = useState(0);
  useEffect(() => {
    let live = true;
    let timer = null;
    setState((s) => ({ ...s, loading: true }));
    fn()
      .then((data) => live && setState({ data, error: null, loading: false }))
      .catch((error) => {
        if (!live) return;
        setState((s) => ({ data: s.data, error, loading: false }));
        // A gateway that is down: keep trying (the page shows it is retrying).
        if (error.code === 'network' || error.code === 'unavailable' || error.status >= 500) {
          timer = setTimeout(() => setRetry((n) => n + 1), 2000);
        }
      });
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [...deps, retry]);
  return state;
}

/** #/: my workspaces (straight into the only one). */
export function Workspaces() {
  const me = useLoad(() => api('GET', '/me'), []);
  useEffect(() => {
    const ws = me.data && me.data.workspaces;
    if (ws && ws.length === 1) go(`/w/${ws[0].id}`, { replace: true });
  }, [me.data]);
  return html`<main class="page" id="main">
    <h1>Your workspaces</h1>
    ${me.loading && !me.data && html`<p role="status">Loading…</p>`}
    <${ErrorLine} error=${me.error} />
    ${me.data &&
    (me.data.workspaces.length
      ? html`<ul class="cards">
          ${me.data.workspaces.map(
            (w) => html`<li key=${w.id}>
              <a class="card link" href=${`#/w/${w.id}`}>
                <strong>${w.name}</strong>
                <span class="muted">${w.role}</span>
              </a>
            </li>`,
          )}
        </ul>`
      : html`<p>You are not in any workspace yet. Ask a consultant for an invitation link.</p>`)}
  </main>`;
}

/**
 * The rooms of a workspace with unread counts (the sidebar of the workspace).
 * @param {{ws: string, client: any, rooms: object[], current?: string}} props
 */
export function RoomList({ ws, client, rooms, current }) {
  const [unread, setUnread] = useState(new Map());
  useEffect(() => {
    let live = true;
    const load = () =>
      client
        .unread()
        .then((r) => live && setUnread(new Map(r.rooms.map((x) => [x.room, x.unread]))))
        .catch(() => {});
    load();
    const t = setInterval(load, UNREAD_EVERY_MS);
    const offState = client.on('state', (s) => s.state === 'open' && load());
    return () => {
      live = false;
      clearInterval(t);
      offState();
    };
  }, [client, current]);
  return html`<nav class="rooms" aria-label="Rooms">
    <h2>Rooms</h2>
    <ul>
      ${rooms.map((r) => {
        const n = r.id === current ? 0 : unread.get(r.id) || 0;
        return html`<li key=${r.id}>
          <a
            href=${`#/w/${ws}/r/${r.id}`}
            class=${r.id === current ? 'room current' : 'room'}
            aria-current=${r.id === current ? 'page' : undefined}
            data-room=${r.id}
          >
            <span class="room-name">${r.kind === 'dialogue' ? '» ' : '# '}${r.name}</span>
            ${n > 0 && html`<span class="badge" aria-label=${`${n} unread`}>${n > 999 ? '999+' : n}</span>`}
          </a>
        </li>`;
      })}
    </ul>
    ${!rooms.length && html`<p class="muted">No rooms yet.</p>`}
  </nav>`;
}

/** #/me: my profile (rectification), signing out, my data (export, erasure). */
export function Profile() {
  const me = useLoad(() => api('GET', '/me'), []);
  const [f, setF] = useState(null);
  const [saved, setSaved] = useState(null);
  const [error, setError] = useState(null);
  const first = useRef(null);
  useEffect(() => {
    if (me.data && !f) {
      const d = me.data;
      setF({
        first_name: d.first_name || '',
        last_name: d.last_name || '',
        display_name: d.display_name || '',
        email: d.email || '',
      });
    }
  }, [me.data]);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    setSaved(null);
    const d = me.data;
    const patch = {};
    for (const k of ['first_name', 'last_name', 'display_name']) {
      if ((d[k] || '') !== f[k]) patch[k] = f[k] === '' ? null : f[k];
    }
    if (f.email && f.email !== (d.email || '')) patch.email = f.email;
    if (!Object.keys(patch).length) {
      setSaved('Nothing to change.');
      return;
    }
    try {
      const r = await api('PATCH', '/me', patch);
      setSaved(
        r.pending_email
          ? `Saved. We sent a link to ${r.pending_email}: your address changes when you open it.`
          : 'Saved.',
      );
    } catch (err) {
      setError(err);
    }
  };
  const signOut = async (everywhere) => {
    try {
      await api('POST', everywhere ? '/auth/revoke-all' : '/auth/logout');
    } catch {
      /* the session ends here whatever the server said */
    }
    closeClient();
    setSession(null);
    go('/signin', { replace: true });
  };
  return html`<main class="page" id="main">
    <p><a href="#/">‹ Workspaces</a></p>
    <h1>Your profile</h1>
    <${ErrorLine} error=${me.error} />
    ${f &&
    html`<form class="card" onSubmit=${save}>
      <${Field} label="First name" name="first_name" value=${f.first_name} onInput=${set('first_name')} autocomplete="given-name" />
      <${Field} label="Last name" name="last_name" value=${f.last_name} onInput=${set('last_name')} autocomplete="family-name" />
      <${Field} label="Display name" name="display_name" value=${f.display_name} onInput=${set('display_name')} hint="Shown to others instead of your full name." />
      <${Field} label="Email" name="email" type="email" value=${f.email} onInput=${set('email')} autocomplete="email" hint=${me.data.pending_email ? `Waiting for confirmation: ${me.data.pending_email}` : undefined} />
      <${ErrorLine} error=${error} />
      ${saved && html`<p class="notice" role="status">${saved}</p>`}
      <button type="submit" class="primary" ref=${first}>Save</button>
    </form>
    <h2>Your workspaces</h2>
    <ul>
      ${me.data.workspaces.map((w) => html`<li key=${w.id}><a href=${`#/w/${w.id}`}>${w.name}</a> <span class="muted">(${w.role})</span></li>`)}
    </ul>
    <h2>Sessions</h2>
    <p class="actions">
      <button type="button" onClick=${() => signOut(false)}>Sign out</button>
      <button type="button" onClick=${() => signOut(true)}>Sign out everywhere</button>
    </p>
    <${MyData} me=${me.data} />`}
  </main>`;
}

/** A map person id -> display name for a workspace. */
export function peopleMap(list) {
  return new Map((list || []).map((p) => [p.id, personName(p)]));
}
