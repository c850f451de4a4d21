// Tiny DOM helpers for the console. Everything people wrote (names, bodies,
// guideline text) reaches the page only as text nodes: h() sets children
// with textContent/append and attributes with setAttribute, never HTML, so
// a hostile string cannot become markup.

/**
 * Creates an element. `attrs`: attributes, except `on*` functions (event
 * listeners), `class`, and the properties `value`, `checked`, `disabled`,
 * `selected`. Children: nodes, strings (text), numbers, null/false (skipped)
 * or arrays of these.
 * @param {string} tag
 * @param {Record<string, any>|null} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

/** Replaces the children of el. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A date-time for people: local, to the minute (seconds when asked). */
export function when(iso, seconds = false) {
  if (!iso) return '';
  const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
    second: seconds ? '2-digit' : undefined,
  });
}

/** A labelled form field: <label>text <control></label>. */
export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'label' }, label), control,
    hint ? h('span', { class: 'hint' }, hint) : null);
}

/** A <select> of [value, text] pairs. */
export function select(name, options, value, attrs = {}) {
  return h('select', { name, ...attrs },
    options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

/** A person's name for people: display name, else first and last, else the email. */
export function nameOf(p) {
  if (!p) return 'someone';
  const full = [p.first_name, p.last_name].filter(Boolean).join(' ');
  return p.display_name || p.name || full || p.email || p.phone || `${String(p.id).slice(0, 8)}…`;
}

/** The form's fields as an object (empty strings left out). */
export function formData(form) {
  const o = {};
  for (const [k, v] of new FormData(form).entries()) if (v !== '') o[k] = String(v);
  return o;
}
