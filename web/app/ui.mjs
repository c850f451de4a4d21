// Small shared pieces of the people's client: the error line, times, a
// form field. Every string from people goes through Preact as text.

import { html } from '../vendor/preact-htm.mjs';
import { humanError } from './errors.mjs';

/** An error sentence in an alert region (empty when there is none). */
export function ErrorLine({ error, id }) {
  return html`<p class="error" role="alert" id=${id} hidden=${!error}>${error ? humanError(error) : ''}</p>`;
}

/** A labelled input. */
export function Field({ label, name, type = 'text', value, onInput, autocomplete, required, minlength, hint }) {
  const id = `f-${name}`;
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input
      id=${id}
      name=${name}
      type=${type}
      value=${value}
      onInput=${(e) => onInput(e.currentTarget.value)}
      autocomplete=${autocomplete}
      required=${required}
      minlength=${minlength}
      aria-describedby=${hint ? `${id}-hint` : undefined}
    />
    ${hint && html`<small id=${`${id}-hint`} class="hint">${hint}</small>`}
  </div>`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });

/** "14:05", or "3 Mar 14:05" for another day. */
export function formatTime(ms) {
  const d = new Date(ms);
  const today = new Date();
  const t = timeFmt.format(d);
  return d.toDateString() === today.toDateString() ? t : `${dayFmt.format(d)} ${t}`;
}

/** Full date and time for a title attribute. */
export function fullTime(ms) {
  return new Date(ms).toLocaleString();
}
