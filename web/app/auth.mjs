// Signing in, signing up (with the address confirmed through the mailed
// link), confirming, and redeeming an invitation link (API.md, "Proving an
// address").

import { html, useEffect, useState } from '../vendor/preact-htm.mjs';
import { api, getSession, setSession } from './api.mjs';
import { go, setFlash } from './router.mjs';
import { ErrorLine, Field } from './ui.mjs';

/** A form whose submit runs fn, shows its error and disables the button meanwhile. */
function useSubmit(fn) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, submit };
}

export function SignIn({ notice }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, submit } = useSubmit(async () => {
    const r = await api('POST', '/auth/login', { email, password }, { auth: false });
    setSession({ token: r.token, expires_at: r.expires_at, person: r.person && r.person.id });
    go('/', { replace: true });
  });
  return html`<main class="auth" id="main">
    <h1>Sign in to Parley</h1>
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    <form onSubmit=${submit} class="card">
      <${Field} label="Email" name="email" type="email" value=${email} onInput=${setEmail} autocomplete="username" required />
      <${Field} label="Password" name="password" type="password" value=${password} onInput=${setPassword} autocomplete="current-password" required />
      <${ErrorLine} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
    <p>New here? <a href="#/signup">Create an account</a></p>
  </main>`;
}

export function SignUp() {
  const [f, setF] = useState({ email: '', password: '', first_name: '', last_name: '' });
  const [sent, setSent] = useState(false);
  const [resent, setResent] = useState(false);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const { busy, error, submit } = useSubmit(async () => {
    const body = { email: f.email, password: f.password };
    if (f.first_name) body.first_name = f.first_name;
    if (f.last_name) body.last_name = f.last_name;
    await api('POST', '/auth/signup', body, { auth: false });
    setSent(true);
  });
  const resend = useSubmit(async () => {
    await api('POST', '/auth/verify/resend', { email: f.email }, { auth: false });
    setResent(true);
  });
  if (sent) {
    return html`<main class="auth" id="main">
      <h1>Check your mail</h1>
      <p class="notice" role="status">
        We sent a link to <strong>${f.email}</strong>. Open it to confirm your address and finish creating
        your account.
      </p>
      <form onSubmit=${resend.submit}>
        <${ErrorLine} error=${resend.error} />
        <button type="submit" disabled=${resend.busy}>Send the link again</button>
        ${resent && html`<span role="status"> Sent again.</span>`}
      </form>
      <p><a href="#/signin">Back to sign-in</a></p>
    </main>`;
  }
  return html`<main class="auth" id="main">
    <h1>Create your Parley account</h1>
    <form onSubmit=${submit} class="card">
      <${Field} label="Email" name="email" type="email" value=${f.email} onInput=${set('email')} autocomplete="email" required />
      <${Field}
        label="Password"
        name="password"
        type="password"
        value=${f.password}
        onInput=${set('password')}
        autocomplete="new-password"
        required
        minlength="10"
        hint="At least 10 characters; not a dictionary word or your name."
      />
      <${Field} label="First name (optional)" name="first_name" value=${f.first_name} onInput=${set('first_name')} autocomplete="given-name" />
      <${Field} label="Last name (optional)" name="last_name" value=${f.last_name} onInput=${set('last_name')} autocomplete="family-name" />
      <${ErrorLine} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>Create account</button>
    </form>
    <p>Already have an account? <a href="#/signin">Sign in</a></p>
  </main>`;
}

/** #/verify/<secret>: a sign-up (signs in) or a change of address. */
export function Verify({ token }) {
  const [state, setState] = useState({ busy: true, error: null, done: null });
  useEffect(() => {
    // The secret leaves the address bar at once (history, screen sharing).
    history.replaceState(null, '', '#/verify/…');
    api('POST', '/auth/verify', { token }, { auth: false })
      .then((r) => {
        if (r && r.token) {
          setSession({ token: r.token, expires_at: r.expires_at, person: r.person && r.person.id });
          go('/', { replace: true });
        } else setState({ busy: false, error: null, done: 'Your address is confirmed.' });
      })
      .catch((error) => setState({ busy: false, error, done: null }));
  }, [token]);
  return html`<main class="auth" id="main">
    <h1>Confirming your address</h1>
    ${state.busy && html`<p role="status">One moment…</p>`}
    ${state.done && html`<p class="notice" role="status">${state.done}</p>`}
    <${ErrorLine} error=${state.error} />
    ${!state.busy && html`<p><a href=${getSession() ? '#/' : '#/signin'}>Continue</a></p>`}
  </main>`;
}

/** #/invite/<secret>: accept an invitation (a new account, or an existing one). */
export function Invite({ token }) {
  const signedIn = !!getSession();
  const [f, setF] = useState({ password: '', first_name: '', last_name: '' });
  const [needPassword, setNeedPassword] = useState(false);
  const [secret] = useState(token);
  useEffect(() => {
    history.replaceState(null, '', '#/invite/…');
  }, []);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const { busy, error, submit } = useSubmit(async () => {
    const body = { token: secret };
    if (f.password) body.password = f.password;
    if (f.first_name) body.first_name = f.first_name;
    if (f.last_name) body.last_name = f.last_name;
    try {
      // Signed in: the session proves the account (when it holds the address).
      const r = await api('POST', '/invitations/redeem', body, { auth: signedIn && !f.password });
      if (r.token) {
        setSession({ token: r.token, expires_at: r.expires_at, person: r.person_id });
        go(`/w/${r.workspace_id}`, { replace: true });
      } else if (getSession()) go(`/w/${r.workspace_id}`, { replace: true });
      else {
        setFlash('Invitation accepted. Sign in with that account to continue.');
        go('/signin', { replace: true });
      }
    } catch (e) {
      if (e.code === 'password_required') setNeedPassword(true);
      throw e;
    }
  });
  return html`<main class="auth" id="main">
    <h1>You are invited to a Parley workspace</h1>
    <form onSubmit=${submit} class="card">
      <p>
        ${signedIn && !needPassword
          ? 'Accept it with the account you are signed in with, or give the password of the invited address’s account.'
          : 'Choose a password for your new account. If the invited address already has an account, enter its password.'}
      </p>
      <${Field}
        label="Password"
        name="password"
        type="password"
        value=${f.password}
        onInput=${set('password')}
        autocomplete="new-password"
        required=${!signedIn || needPassword}
        minlength="10"
      />
      ${!needPassword &&
      html`<${Field} label="First name (optional)" name="first_name" value=${f.first_name} onInput=${set('first_name')} />
        <${Field} label="Last name (optional)" name="last_name" value=${f.last_name} onInput=${set('last_name')} />`}
      <${ErrorLine} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>Accept invitation</button>
    </form>
  </main>`;
}
