// The HTTP API (protocol/API.md) from the page: JSON in and out, errors as
// ApiError with the API's stable code, and the session kept in localStorage.

const SESSION_KEY = 'parley.session';

/** An API refusal, or `network` when the gateway could not be reached. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {string} [field] */
  constructor(status, code, message, field) {
    super(message);
    /** @type {number} HTTP status, 0 for a network failure */
    this.status = status;
    /** @type {string} stable code (API.md "Errors") */
    this.code = code;
    /** @type {string|undefined} the field the refusal names */
    this.field = field;
  }
}

/** Listeners told when the session ends (a 401 on a call made with it). */
const expiredListeners = new Set();

/** @param {() => void} fn @returns {() => void} */
export function onSessionExpired(fn) {
  expiredListeners.add(fn);
  return () => expiredListeners.delete(fn);
}

/** @returns {{token: string, expires_at?: string, person?: string}|null} */
export function getSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    if (!s || typeof s.token !== 'string') return null;
    if (s.expires_at && Date.parse(s.expires_at) <= Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

/** @param {{token: string, expires_at?: string, person?: string}|null} s */
export function setSession(s) {
  if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else localStorage.removeItem(SESSION_KEY);
}

/**
 * Sends a request to the API. opts.token sends that token instead of the
 * session's (a fresh session for erasure); opts.auth false sends none.
 * @returns {Promise<{res: Response, stored: boolean}>} stored: it carried the stored session
 */
async function send(method, path, body, opts) {
  const headers = {};
  const token = opts.token || (opts.auth === false ? null : getSession()?.token);
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
    return { res, stored: !!token && !opts.token };
  } catch (e) {
    throw new ApiError(0, 'network', String(e && e.message ? e.message : e));
  }
}

/**
 * The ApiError of a refused answer. A 401 `unauthorized` on a call made
 * with the stored session ends it (the page returns to sign-in); one made
 * with another token leaves the stored session alone.
 * @param {Response} res @param {any} json the answer's JSON, or null
 */
function refusal(res, json, stored) {
  const e = (json && json.error) || {};
  const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e.field);
  if (res.status === 401 && stored && err.code === 'unauthorized') {
    setSession(null);
    for (const fn of expiredListeners) fn();
  }
  return err;
}

/**
 * Calls the API. A 401 on a call that carried the session ends it (the page
 * returns to sign-in).
 * @param {string} method
 * @param {string} path under /api/v1
 * @param {object} [body]
 * @param {{auth?: boolean, token?: string}} [opts] auth: send the session token (default true);
 *   token: send this one instead
 * @returns {Promise<any>} the answer's JSON (null for 204)
 */
export async function api(method, path, body, opts = {}) {
  const { res, stored } = await send(method, path, body, opts);
  if (res.status === 204) return null;
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (res.ok) return json;
  throw refusal(res, json, stored);
}

/**
 * GETs a document whole, as a Blob (the export, streamed by the server). A
 * transfer cut midway rejects (`incomplete`): a chunked answer without its
 * last chunk never becomes a short file.
 * @param {string} path under /api/v1
 * @returns {Promise<Blob>}
 */
export async function apiBlob(path) {
  const { res, stored } = await send('GET', path, undefined, {});
  if (!res.ok) {
    let json = null;
    try {
      json = await res.json();
    } catch {
      json = null;
    }
    throw refusal(res, json, stored);
  }
  try {
    return await res.blob();
  } catch (e) {
    throw new ApiError(0, 'incomplete', String(e && e.message ? e.message : e));
  }
}

/** A person's name for display, from a Person or PersonBrief of the API. */
export function personName(p) {
  if (!p) return 'Someone';
  const full = [p.first_name, p.last_name].filter(Boolean).join(' ');
  return p.display_name || full || p.email || 'Someone';
}
