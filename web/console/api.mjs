// The HTTP API (protocol/API.md) with the session's bearer token. Failures
// become ApiError with the server's stable code; a network failure is code
// "network"; a 401 ends the session (the shell returns to sign-in).

const KEY = 'parley.session';

/** The shared session: {token, person, workspace?} in localStorage. */
export const session = {
  get() {
    try {
      const s = JSON.parse(localStorage.getItem(KEY) || 'null');
      return s && typeof s.token === 'string' ? s : null;
    } catch {
      return null;
    }
  },
  set(s) {
    localStorage.setItem(KEY, JSON.stringify(s));
  },
  clear() {
    localStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message || code);
    this.status = status; // HTTP status, 0 for a network failure
    this.code = code; // the stable code of API.md's table
    this.field = extra.field; // the field the server names
    this.rule = extra.rule; // a bad guideline's index
    this.retryAfter = extra.retryAfter; // seconds, when the server says
  }
}

/** Called when the server says the session is over (401). */
let onExpired = () => {};
export function onSessionExpired(fn) {
  onExpired = fn;
}

/**
 * Calls the API. `body` is sent as JSON; `raw` returns the Response's text
 * (CSV). Resolves with the parsed JSON (null for 204).
 */
export async function api(method, path, body, { raw = false, token } = {}) {
  const s = session.get();
  const headers = {};
  const t = token === undefined ? s && s.token : token;
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    let err = {};
    try {
      err = JSON.parse(text).error || {};
    } catch {
      // a proxy's page, not the API's JSON
    }
    const code = err.code || (res.status >= 500 ? 'unavailable' : 'bad_request');
    const e = new ApiError(res.status, code, err.message, {
      field: err.field,
      rule: err.rule,
      retryAfter: Number(res.headers.get('retry-after')) || undefined,
    });
    if (res.status === 401 && t && code === 'unauthorized') onExpired(e);
    throw e;
  }
  if (raw) return text;
  return text ? JSON.parse(text) : null;
}

/** The path of workspace ws: ws('/rooms') -> /workspaces/<id>/rooms. */
export const wsPath = (ws, rest = '') => `/workspaces/${encodeURIComponent(ws)}${rest}`;
