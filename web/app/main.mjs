// The people's client: routes, the top bar, the connection state and the
// workspace shell (rooms beside the open room).

import { html, render, useEffect, useState } from '../vendor/preact-htm.mjs';
import { api, getSession, onSessionExpired, setSession } from './api.mjs';
import { Invite, SignIn, SignUp, Verify } from './auth.mjs';
import { RoomView } from './chat.mjs';
import { clientFor, closeClient } from './conn.mjs';
import { humanError } from './errors.mjs';
import { Profile, RoomList, Workspaces, peopleMap, useLoad } from './home.mjs';
import { PUBLIC_ROUTES, go, parseRoute, setFlash, takeFlash } from './router.mjs';
import { ErrorLine } from './ui.mjs';

const EXPIRED = 'Your session has ended. Please sign in again.';

function endSession(notice) {
  closeClient();
  setSession(null);
  setFlash(notice);
  go('/signin', { replace: true });
}

function App() {
  const [route, setRoute] = useState(parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', on);
    const off = onSessionExpired(() => endSession(EXPIRED));
    return () => {
      window.removeEventListener('hashchange', on);
      off();
    };
  }, []);
  const session = getSession();
  const inWorkspace = route.name === 'workspace' || route.name === 'room';
  useEffect(() => {
    if (!inWorkspace) closeClient();
  }, [inWorkspace]);
  if (!session && !PUBLIC_ROUTES.has(route.name)) {
    // Deep links survive sign-in: come back here afterwards.
    if (route.name !== 'home') sessionStorage.setItem('parley.after', location.hash);
    return html`<${Frame}><${SignIn} notice=${takeFlash()} /><//>`;
  }
  if (session && route.name === 'home') {
    const after = sessionStorage.getItem('parley.after');
    if (after) {
      sessionStorage.removeItem('parley.after');
      location.replace(after);
    }
  }
  let page;
  switch (route.name) {
    case 'signin':
      page = session ? html`<${Workspaces} />` : html`<${SignIn} notice=${takeFlash()} />`;
      break;
    case 'signup':
      page = html`<${SignUp} />`;
      break;
    case 'verify':
      page = html`<${Verify} token=${route.params.token} />`;
      break;
    case 'invite':
      page = html`<${Invite} token=${route.params.token} />`;
      break;
    case 'me':
      page = html`<${Profile} />`;
      break;
    case 'workspace':
    case 'room':
      // The workspace draws its own frame, with the connection's state.
      return html`<${Workspace} ws=${route.params.ws} room=${route.params.room} />`;
    case 'home':
      page = html`<${Workspaces} />`;
      break;
    default:
      page = html`<main class="page" id="main"><h1>Not found</h1><p><a href="#/">Go to your workspaces</a></p></main>`;
  }
  return html`<${Frame} signedIn=${!!session}>${page}<//>`;
}

/** The top bar and the page. */
function Frame({ signedIn, children, client }) {
  return html`<div class="frame">
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      const m = document.getElementById('main');
      if (m) m.focus();
    }}>Skip to content</a>
    <header class="topbar">
      <a class="brand" href="#/">Parley</a>
      ${client && html`<${ConnState} client=${client} />`}
      ${signedIn && html`<nav class="top-nav" aria-label="Account"><a href="#/">Workspaces</a><a href="#/me">Profile</a></nav>`}
    </header>
    ${children}
  </div>`;
}

/** The WebSocket connection's state, visible when it is not simply "connected". */
function ConnState({ client }) {
  const [s, setS] = useState({ state: client.state });
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const offs = [
      client.on('state', (st) => setS({ ...st, at: Date.now() })),
      client.on('error', (err) => {
        if (err.code === 'auth_failed' || (err.code === 'closed' && err.closeCode === 1008)) endSession(EXPIRED);
      }),
    ];
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      offs.forEach((f) => f());
      clearInterval(t);
    };
  }, [client]);
  let text;
  let cls;
  if (s.state === 'open') {
    text = 'Connected';
    cls = 'ok';
  } else if (s.state === 'reconnecting') {
    const left = s.retryInMs ? Math.max(0, Math.ceil((s.at + s.retryInMs - now) / 1000)) : 0;
    text = left > 0 ? `Connection lost. Reconnecting in ${left} s…` : 'Connection lost. Reconnecting…';
    cls = 'bad';
  } else if (s.state === 'closed') {
    text = 'Disconnected';
    cls = 'bad';
  } else {
    text = 'Connecting…';
    cls = 'wait';
  }
  return html`<p class=${`conn ${cls}`} role="status" data-state=${s.state}>
    <span class="dot" aria-hidden="true"></span>${text}
  </p>`;
}

/** A workspace: its rooms beside the open room. */
function Workspace({ ws, room }) {
  const client = clientFor(ws);
  const [me, setMe] = useState(client.session ? client.session.person : null);
  const info = useLoad(
    () =>
      Promise.all([
        api('GET', `/workspaces/${ws}`),
        api('GET', `/workspaces/${ws}/rooms`),
        api('GET', `/workspaces/${ws}/people`),
      ]),
    [ws],
  );
  useEffect(() => {
    setMe(client.session ? client.session.person : null);
    return client.on('session', (s) => setMe(s.person));
  }, [client]);
  const [wsInfo, rooms, people] = info.data || [null, { items: [] }, { items: [] }];
  const names = peopleMap(people.items);
  const current = room && rooms.items.find((r) => r.id === room);
  const retrying = info.error && (info.error.code === 'network' || info.error.status >= 500);
  return html`<${Frame} signedIn client=${client}>
    <div class=${`workspace${room ? ' in-room' : ''}`}>
      <aside class="side">
        <p class="ws-name"><a href="#/">‹</a> ${wsInfo ? wsInfo.name : '…'}</p>
        <${RoomList} ws=${ws} client=${client} rooms=${rooms.items} current=${room} />
      </aside>
      <main class="main" id="main" tabindex="-1">
        ${room && html`<p class="back"><a href=${`#/w/${ws}`}>‹ Rooms</a></p>`}
        ${info.error &&
        html`<p class=${retrying ? 'notice' : 'error'} role="alert">
          ${humanError(info.error)}${retrying ? ' Retrying…' : ''}
        </p>`}
        ${!room && info.data && html`<div class="empty"><h1>${wsInfo.name}</h1><p>Choose a room.</p></div>`}
        ${room && info.data && !current && html`<${ErrorLine} error=${{ code: 'room_not_found' }} />`}
        ${current && me
          ? html`<${RoomView}
              key=${current.id}
              client=${client}
              room=${current}
              me=${me}
              names=${names}
              editWindowS=${wsInfo.edit_window_s}
            />`
          : room && !info.error && html`<p role="status" class="muted loading">Connecting…</p>`}
      </main>
    </div>
  <//>`;
}

render(html`<${App} />`, document.getElementById('app'));
