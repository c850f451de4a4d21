// Hash routes, so that static serving needs no fallback for deep links and
// secrets in links (invitations, confirmations) never reach a server log:
//   #/signin  #/signup  #/verify/<secret>  #/invite/<secret>  #/me
//   #/ (my workspaces)  #/w/<ws> (its rooms)  #/w/<ws>/r/<room>

const ROUTES = [
  ['signin', /^\/signin$/, []],
  ['signup', /^\/signup$/, []],
  ['verify', /^\/verify\/([^/]+)$/, ['token']],
  ['invite', /^\/invite\/([^/]+)$/, ['token']],
  ['me', /^\/me$/, []],
  ['room', /^\/w\/([0-9a-f-]{36})\/r\/([0-9a-f-]{36})$/, ['ws', 'room']],
  ['workspace', /^\/w\/([0-9a-f-]{36})$/, ['ws']],
  ['home', /^\/?$/, []],
];

/** Routes reachable without a session. */
export const PUBLIC_ROUTES = new Set(['signin', 'signup', 'verify', 'invite']);

/**
 * @param {string} hash location.hash
 * @returns {{name: string, params: Record<string, string>}}
 */
export function parseRoute(hash) {
  const path = (hash || '').replace(/^#/, '') || '/';
  for (const [name, re, keys] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    const params = {};
    keys.forEach((k, i) => {
      params[k] = decodeURIComponent(m[i + 1]);
    });
    return { name, params };
  }
  return { name: 'notfound', params: {} };
}

/** @param {string} path e.g. '/w/<ws>' @param {{replace?: boolean}} [o] */
export function go(path, o = {}) {
  if (o.replace) history.replaceState(null, '', `#${path}`);
  else location.hash = path;
  if (o.replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}

let flash = null; // a notice for the next page shown (e.g. "session ended")

/** Sets the notice the next page shows once. @param {string|null} text */
export function setFlash(text) {
  flash = text;
}

/** The pending notice, cleared. @returns {string|null} */
export function takeFlash() {
  const t = flash;
  flash = null;
  return t;
}
