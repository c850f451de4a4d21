// Data rights on the profile page (API.md "Data rights"): downloading
// everything the server holds about me (EXPORT.md) and erasing my account.

import { html, useEffect, useRef, useState } from '../vendor/preact-htm.mjs';
import { api, apiBlob, setSession } from './api.mjs';
import { closeClient } from './conn.mjs';
import { go, setFlash } from './router.mjs';
import { ErrorLine, Field } from './ui.mjs';

/** Shown on the sign-in page once the account is gone. */
export const ERASED_NOTICE =
  'Your account was erased. You can no longer sign in with it; in the conversations you took part in you now appear as a former member.';

/* An action the person started is not retried on its own, so a network
 * failure says "try again" rather than the page's "Retrying…". */
const actionError = (err) => (err && err.code === 'network' ? { code: 'offline', message: err.message } : err);

/** The export's file name: parley-export-YYYY-MM-DD.json (UTC). */
export function exportName(now = new Date()) {
  return `parley-export-${now.toISOString().slice(0, 10)}.json`;
}

/**
 * Saves blob as a file: an object URL and a temporary <a download>. No
 * inline script is involved, so the page's strict CSP allows it (a
 * download is not a fetch: connect-src does not apply).
 */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // Some browsers read the URL after click() returns: free it later.
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** "Download my data": the whole export, saved once it arrived complete. */
function Export() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const download = async () => {
    if (busy) return;
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const blob = await apiBlob('/me/export');
      const name = exportName();
      saveBlob(blob, name);
      setDone(`Saved as ${name}.`);
    } catch (err) {
      setError(actionError(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="card rights" aria-labelledby="export-h">
    <h3 id="export-h">Download my data</h3>
    <p>
      One JSON file with everything Parley holds about you: your account, memberships, what you wrote, your likes and
      ratings, invitations, sign-ins and sessions. Other people appear in it only as ids.
    </p>
    <${ErrorLine} error=${error} id="export-error" />
    ${done && html`<p class="notice" role="status">${done}</p>`}
    <button type="button" id="export" onClick=${download} disabled=${busy} aria-busy=${busy ? 'true' : 'false'}>
      ${busy ? 'Preparing your file…' : 'Download my data'}
    </button>
  </section>`;
}

/**
 * "Erase my account": a confirmation that asks for the password, a fresh
 * password login (the server wants one from the last 5 minutes), then
 * DELETE /me with that session; afterwards the page signs out.
 */
function Erase({ me }) {
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const opener = useRef(null);
  const wasOpen = useRef(false);
  useEffect(() => {
    // Focus follows the step: the password field when the confirmation
    // opens, the button that opened it when it closes.
    if (open) document.getElementById('f-erase_password')?.focus();
    else if (wasOpen.current && opener.current) opener.current.focus();
    wasOpen.current = open;
  }, [open]);
  const cancel = () => {
    setOpen(false);
    setPassword('');
    setError(null);
  };
  const erase = async (e) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    let fresh = null;
    try {
      fresh = (await api('POST', '/auth/login', { email: me.email, password }, { auth: false })).token;
      await api('DELETE', '/me', undefined, { token: fresh });
    } catch (err) {
      // The account stays: end the session this attempt minted.
      if (fresh) api('POST', '/auth/logout', undefined, { token: fresh }).catch(() => {});
      setError(actionError(err));
      setBusy(false);
      return;
    }
    // Every session went with the account: nothing to sign out of on the server.
    closeClient();
    setSession(null);
    setFlash(ERASED_NOTICE);
    go('/signin', { replace: true });
  };
  const owned = me.workspaces.filter((w) => w.role === 'owner');
  return html`<section class="card rights danger-zone" aria-labelledby="erase-h">
    <h3 id="erase-h">Erase my account</h3>
    <p>
      Your account, your sign-ins and sessions are deleted. In each workspace you become a former member: what you wrote
      is removed, or kept without your name where the workspace keeps conversations whole. This cannot be undone.
    </p>
    ${owned.length > 0 &&
    html`<p class="hint">
      You own ${owned.map((w, i) => html`${i ? ', ' : ''}<span class="user-text">${w.name}</span>`)}. A workspace needs
      another owner, or must be deleted, before its only owner can leave.
    </p>`}
    ${!me.email
      ? html`<p class="hint">Erasing needs a sign-in with your email address and password; add an email address first.</p>`
      : !open
        ? html`<button type="button" class="danger" id="erase-start" ref=${opener} onClick=${() => setOpen(true)}>
            Erase my account…
          </button>`
        : html`<form onSubmit=${erase} aria-describedby="erase-h">
            <p><strong>Enter your password to confirm.</strong></p>
            <${Field}
              label="Password"
              name="erase_password"
              type="password"
              value=${password}
              onInput=${setPassword}
              autocomplete="current-password"
              required
            />
            <${ErrorLine} error=${error} id="erase-error" />
            <p class="actions">
              <button type="submit" class="danger" id="erase-confirm" disabled=${busy}>
                ${busy ? 'Erasing…' : 'Erase my account for good'}
              </button>
              <button type="button" onClick=${cancel} disabled=${busy}>Cancel</button>
            </p>
          </form>`}
  </section>`;
}

/** The profile's "Your data" section. @param {{me: object}} props GET /me */
export function MyData({ me }) {
  return html`<h2>Your data</h2>
    <div class="rights-list">
      <${Export} />
      <${Erase} me=${me} />
    </div>`;
}
