// The evaluation of a workspace or a room (charts over time, response
// times, star averages, seen ratios, the figures as tables and a CSV
// download) and the visit log.
import { api } from './api.mjs';
import { chart } from './chart.mjs';
import { field, h, put, select, when } from './dom.mjs';
import { act, loadPeople, loadRooms, section, status, table } from './ui.mjs';

const day = (d) => d.toISOString().slice(0, 10);

function bucketLabel(iso, bucket) {
  const d = new Date(iso);
  if (bucket === 'year') return String(d.getUTCFullYear());
  if (bucket === 'month') return d.toLocaleDateString(undefined, { month: 'short', year: '2-digit', timeZone: 'UTC' });
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
}

const seconds = (s) => (s === null || s === undefined ? '—' : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

export async function renderEvaluation(ctx) {
  if (!['owner', 'admin', 'keyuser'].includes(ctx.wsInfo.role)) {
    put(ctx.main, h('h1', null, 'Evaluation'), section('Evaluation', h('p', null, 'Only owners, admins and key users read the evaluation.')));
    return;
  }
  const [people, rooms] = await Promise.all([loadPeople(ctx), loadRooms(ctx)]);
  const now = new Date();
  const scope = select('room', [['', 'Whole workspace'], ...rooms.list.map((r) => [r.id, r.name])], '', { 'aria-label': 'Scope' });
  const from = h('input', { type: 'date', name: 'from', value: day(new Date(now.getTime() - 29 * 86400000)), required: true });
  const to = h('input', { type: 'date', name: 'to', value: day(now), required: true });
  const out = h('div', { class: 'evaluation' });
  const st = status();
  const show = h('button', { type: 'submit', class: 'primary' }, 'Show');
  const csv = h('button', { type: 'button' }, 'Download CSV');
  // [from, to]: whole days in UTC, "to" included.
  const query = (fmt) => {
    const f = `${from.value}T00:00:00Z`;
    const t = new Date(Date.parse(`${to.value}T00:00:00Z`) + 86400000).toISOString().replace('.000Z', 'Z');
    return `?from=${encodeURIComponent(f)}&to=${encodeURIComponent(t)}${fmt ? `&format=${fmt}` : ''}`;
  };
  const base = () => (scope.value ? `/rooms/${scope.value}/evaluation` : '/evaluation');
  const load = async () => {
    const e = await api('GET', ctx.path(base() + query()));
    put(out, figures(e, people, rooms));
  };
  csv.addEventListener('click', async () => {
    const text = await act(csv, st, () => api('GET', ctx.path(base() + query('csv')), undefined, { raw: true }), 'Downloaded.');
    if (text === undefined) return;
    const name = `parley-evaluation-${scope.value ? rooms.name(scope.value).replace(/[^\w-]+/g, '_') : 'workspace'}-${from.value}-${to.value}.csv`;
    const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
    const a = h('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
  const form = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (to.value < from.value) return st.fail({ code: 'bad_query' });
      await act(show, st, load);
    },
  }, field('Scope', scope), field('From', from), field('To (included)', to), h('div', { class: 'form-end' }, show, csv, st.el));
  await load();
  put(ctx.main, h('h1', null, 'Evaluation'), section('Range', form), out);
}

function figures(e, people, rooms) {
  const tiles = [
    ['Messages', e.messages], ['Active people', e.active_people], ['Replies', e.replies],
    ['Median response', seconds(e.median_response_s)], ['Likes', e.likes], ['Ratings', e.ratings],
    ['Star average', e.star_avg === null || e.star_avg === undefined ? '—' : `${e.star_avg} ★`],
  ];
  const series = e.series || [];
  const pts = (k) => series.map((p) => ({ label: bucketLabel(p.at, e.bucket), value: p[k] }));
  const per = { day: 'per day', week: 'per week', month: 'per month', year: 'per year' }[e.bucket] || '';
  const rated = (e.people || []).filter((p) => p.star_avg_received !== null && p.star_avg_received !== undefined);
  return [
    h('section', { class: 'card' }, h('h2', null, 'Totals'), h('dl', { class: 'tiles' }, tiles.map(([k, v]) => h('div', { class: 'tile' }, h('dt', null, k), h('dd', null, String(v)))))),
    h('section', { class: 'card charts' }, h('h2', null, 'Over time'),
      h('figure', { 'data-chart': 'messages' }, h('figcaption', null, `Messages ${per}`), chart({ title: `Messages ${per}`, points: pts('messages') })),
      h('figure', { 'data-chart': 'response' }, h('figcaption', null, `Median response time ${per}`), chart({ title: `Median response time ${per} (seconds)`, points: pts('median_response_s'), kind: 'line', unit: ' s' })),
      h('figure', { 'data-chart': 'stars' }, h('figcaption', null, `Star average ${per}`), chart({ title: `Star average ${per}`, points: pts('star_avg'), kind: 'line', fixedMax: 5, unit: '★' }))),
    h('section', { class: 'card charts' }, h('h2', null, 'Stars and seen ratios'),
      h('figure', { 'data-chart': 'people-stars' }, h('figcaption', null, 'Star average received, per person'),
        chart({ title: 'Star average received, per person', points: rated.map((p) => ({ label: people.name(p.person_id), value: p.star_avg_received })), fixedMax: 5, unit: '★' })),
      h('figure', { 'data-chart': 'seen' }, h('figcaption', null, 'Share of people who saw each dialogue entry'),
        chart({ title: 'Share who saw each entry', points: (e.entries || []).map((x) => ({ label: `${rooms.name(x.room)} #${x.seq}`, value: x.share === null ? null : Math.round(x.share * 100) })), fixedMax: 100, unit: '%' }))),
    h('section', { class: 'card' }, h('h2', null, 'People'), table('Per person', ['Person', 'Messages', 'Replies', 'Likes received', 'Ratings received', 'Star average'],
      (e.people || []).map((p) => [people.name(p.person_id), String(p.messages), String(p.replies), String(p.likes_received), String(p.ratings_received), p.star_avg_received ?? '—']), 'Nobody wrote in this range.')),
    h('section', { class: 'card' }, h('h2', null, 'Guidelines and moderation'),
      table('Guideline hits', ['Rule', 'Action', 'Hits'], (e.guideline_hits || []).map((x) => [h('code', null, x.rule), x.action, String(x.count)]), 'No guideline hits.'),
      table('Moderation actions', ['Action', 'Count'], (e.moderation || []).map((x) => [x.action, String(x.count)]), 'No moderation actions.')),
  ];
}

export async function renderVisits(ctx) {
  if (!['owner', 'admin'].includes(ctx.wsInfo.role)) {
    put(ctx.main, h('h1', null, 'Visit log'), section('Visit log', h('p', null, 'Only owners and admins read the visit log.')));
    return;
  }
  const people = await loadPeople(ctx);
  const rows = h('tbody');
  const st = status();
  let before = null;
  const more = h('button', { type: 'button' }, 'Older visits');
  const load = async () => {
    const q = `?limit=100${before ? `&before=${before}` : ''}`;
    const v = await api('GET', ctx.path(`/visits${q}`));
    for (const x of v.items) {
      rows.append(h('tr', null, h('td', null, when(x.at, true)), h('td', null, people.name(x.person_id)),
        h('td', null, x.kind === 'login' ? 'sign-in' : 'connection'),
        h('td', null, x.ip || '—', x.ip_anonymised ? h('span', { class: 'badge' }, 'anonymised') : null),
        h('td', null, x.os || ''), h('td', null, x.browser || '')));
      before = x.id;
    }
    more.hidden = v.items.length < 100;
    if (!rows.children.length) rows.append(h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No visits yet.')));
  };
  more.addEventListener('click', () => act(more, st, load));
  await load();
  put(ctx.main, h('h1', null, 'Visit log'),
    section('Sign-ins and connections', h('p', { class: 'muted' }, 'Operating system and browser families only; addresses are anonymised after the retention period.'),
      h('div', { class: 'table-wrap' }, h('table', null, h('caption', { class: 'sr-only' }, 'Visits'),
        h('thead', null, h('tr', null, ['When', 'Who', 'What', 'Address', 'System', 'Browser'].map((t) => h('th', { scope: 'col' }, t)))), rows)),
      more, st.el));
}
