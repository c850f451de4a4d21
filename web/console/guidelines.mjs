// The communication guidelines editor (protocol/GUIDELINES.md): the
// workspace's rules or a room's overrides as a list of rule cards, saved as
// one set; the dry run shows the verdict and every hit for a sample text;
// the audit lists who changed what.
import { api } from './api.mjs';
import { field, h, put, select, when } from './dom.mjs';
import { act, loadPeople, loadRooms, section, status, table } from './ui.mjs';

const KINDS = [
  ['words', 'Words or phrases'], ['regex', 'Regular expression'], ['pii', 'Personal data'],
  ['links', 'Links'], ['max_length', 'Maximum length'], ['max_mentions', 'Maximum @mentions'],
  ['rate', 'Messages per minute'], ['slow_mode', 'Seconds between messages'],
];
const ACTIONS = [
  ['allow', 'allow'], ['flag', 'flag for moderators'], ['mask', 'mask (****)'], ['redact', 'redact ([removed])'],
  ['shadow', 'shadow (only sender and moderators see it)'], ['hold', 'hold for review'], ['reject', 'reject'],
];
const ROLES = ['owner', 'admin', 'keyuser', 'support', 'member', 'avatar'];
const PII = ['email', 'phone', 'card', 'iban'];
const MAX_KINDS = new Set(['max_length', 'max_mentions', 'rate', 'slow_mode']);
const list = (s) => s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);

/** One rule's card; read() gives the rule back (unknown fields kept). */
function ruleCard(rule, index, onRemove) {
  const id = h('input', { value: rule.id || '', required: true, maxlength: 100, 'aria-label': 'Rule id' });
  const kind = select('kind', KINDS, rule.kind || 'words', { 'aria-label': 'Kind' });
  const action = select('action', ACTIONS, rule.action || 'flag', { 'aria-label': 'Action' });
  const terms = h('textarea', { rows: 2, 'aria-label': 'Terms, one per line or comma-separated' });
  terms.value = (rule.terms || []).join('\n');
  const whole = h('input', { type: 'checkbox', checked: rule.whole_words !== false });
  const leet = h('input', { type: 'checkbox', checked: !!rule.leet });
  const pattern = h('input', { value: rule.pattern || '', maxlength: 1000, 'aria-label': 'Pattern (PCRE2)' });
  const detect = PII.map((d) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: d, checked: (rule.detect || PII).includes(d) }), d));
  const allow = h('input', { value: (rule.allow || []).join(', '), 'aria-label': 'Allowed domains', placeholder: 'client.example' });
  const max = h('input', { type: 'number', min: 0, value: rule.max ?? '', 'aria-label': 'Maximum' });
  const exempt = ROLES.map((r) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: r, checked: (rule.exempt || []).includes(r) }), r));
  const params = h('div', { class: 'params' });
  const showParams = () => {
    const k = kind.value;
    if (k === 'words') put(params, field('Terms', terms, 'One per line (or comma-separated).'), h('div', { class: 'row' }, h('label', { class: 'check' }, whole, 'whole words'), h('label', { class: 'check' }, leet, 'catch l33t spellings')));
    else if (k === 'regex') put(params, field('Pattern', pattern, 'PCRE2, matched case-insensitively.'));
    else if (k === 'pii') put(params, h('fieldset', null, h('legend', null, 'Detect'), detect));
    else if (k === 'links') put(params, field('Allowed domains', allow, 'Links to other hosts hit; empty: every link hits.'));
    else put(params, field({ max_length: 'Characters at most', max_mentions: 'Mentions at most', rate: 'Messages per minute at most', slow_mode: 'Seconds between messages' }[k], max));
  };
  kind.addEventListener('change', showParams);
  showParams();
  const card = h('fieldset', { class: 'rule', 'data-rule': index },
    h('legend', null, `Rule ${index + 1}`),
    h('div', { class: 'grid-form' }, field('Id', id), field('Kind', kind), field('Action', action)),
    params,
    h('details', null, h('summary', null, 'Roles it does not apply to'), h('div', { class: 'row' }, exempt)),
    h('button', { type: 'button', class: 'danger small', onclick: onRemove }, 'Remove rule'));
  card.read = () => {
    const r = { ...rule, id: id.value.trim(), kind: kind.value, action: action.value };
    for (const k of ['terms', 'whole_words', 'leet', 'pattern', 'detect', 'allow', 'max']) delete r[k];
    if (kind.value === 'words') {
      r.terms = list(terms.value);
      r.whole_words = whole.checked;
      r.leet = leet.checked;
    } else if (kind.value === 'regex') r.pattern = pattern.value;
    else if (kind.value === 'pii') r.detect = detect.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    else if (kind.value === 'links') r.allow = list(allow.value);
    else if (MAX_KINDS.has(kind.value)) r.max = max.value === '' ? undefined : Number(max.value);
    const ex = exempt.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    if (ex.length) r.exempt = ex;
    else delete r.exempt;
    return r;
  };
  return card;
}

export async function renderGuidelines(ctx) {
  const manage = ['owner', 'admin', 'keyuser'].includes(ctx.wsInfo.role);
  const rooms = await loadRooms(ctx);
  const scope = select('scope', [['', 'Whole workspace'], ...rooms.list.filter((r) => !r.archived).map((r) => [r.id, `Room: ${r.name} (overrides)`])], '', { 'aria-label': 'Rules of' });
  const editor = h('div');
  const st = status();
  let cards = [];
  let version = 0;
  const rulesEl = h('div', { class: 'rules' });
  const redraw = () => put(rulesEl, cards.length ? cards : h('p', { class: 'muted empty' }, 'No rules: every message is allowed.'));
  const rebuild = (rules) => {
    cards = [];
    rules.forEach((r) => addCard(r));
    redraw();
  };
  const addCard = (r) => {
    const card = ruleCard(r, cards.length, () => {
      const rules = cards.filter((c) => c !== card).map((c) => c.read());
      rebuild(rules);
    });
    cards.push(card);
  };
  const load = async () => {
    const path = scope.value ? `/rooms/${scope.value}/guidelines` : '/guidelines';
    const g = await api('GET', ctx.path(path));
    version = g.version;
    rebuild(g.rules || []);
    st.ok(g.updated_at ? `Version ${g.version}, changed ${when(g.updated_at)}.` : 'Not set yet.');
  };
  scope.addEventListener('change', () => load().catch((e) => st.fail(e)));
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save guidelines');
  const form = h('form', {
    class: 'stack',
    onsubmit: async (ev) => {
      ev.preventDefault();
      for (const c of cards) c.classList.remove('invalid');
      const rules = cards.map((c) => c.read());
      const path = scope.value ? `/rooms/${scope.value}/guidelines` : '/guidelines';
      save.disabled = true;
      st.busy();
      try {
        const g = await api('PUT', ctx.path(path), { rules });
        version = g.version;
        st.ok(`Saved: version ${version}. In force for the next message on every gateway.`);
        ctx.announce('Guidelines saved');
        await loadAudit();
      } catch (e) {
        st.fail(e);
        const i = typeof e.rule === 'number' ? e.rule : /rules\[(\d+)\]/.exec(e.field || '')?.[1];
        if (i !== undefined && cards[Number(i)]) {
          cards[Number(i)].classList.add('invalid');
          cards[Number(i)].scrollIntoView({ block: 'center' });
          cards[Number(i)].querySelector('input,select,textarea')?.focus();
        }
      } finally {
        save.disabled = false;
      }
    },
  },
  rulesEl,
  manage ? h('div', { class: 'row' },
    h('button', { type: 'button', onclick: () => { addCard({ id: `rule-${cards.length + 1}`, kind: 'words', action: 'flag', terms: [] }); redraw(); cards[cards.length - 1].querySelector('input')?.focus(); } }, 'Add rule'),
    save) : null,
  st.el);
  put(editor, field('Rules of', scope), form);

  // dry run
  const text = h('textarea', { name: 'text', rows: 4, required: true, 'aria-label': 'Sample text' });
  const dryRoom = select('room_id', [['', 'workspace rules only'], ...rooms.list.filter((r) => !r.archived).map((r) => [r.id, r.name])], '', { 'aria-label': 'As in room' });
  const dryRole = select('role', [['', 'my role'], ...ROLES.map((r) => [r, r])], 'member', { 'aria-label': 'As sent by' });
  const result = h('div', { class: 'dry-result', 'aria-live': 'polite' });
  const dryBtn = h('button', { type: 'submit', class: 'primary' }, 'Try it');
  const dst = status();
  const dry = h('form', {
    class: 'stack',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { text: text.value };
      if (dryRoom.value) body.room_id = dryRoom.value;
      if (dryRole.value) body.role = dryRole.value;
      const r = await act(dryBtn, dst, () => api('POST', ctx.path('/guidelines/dry-run'), body));
      if (r) put(result, verdict(text.value, r));
    },
  }, field('Sample text', text), h('div', { class: 'grid-form' }, field('In room', dryRoom), field('Sent by', dryRole)), dryBtn, dst.el, result);

  const auditEl = h('div');
  const loadAudit = async () => {
    if (!manage) return;
    const [a, people] = await Promise.all([api('GET', ctx.path('/guidelines/audit')), loadPeople(ctx)]);
    put(auditEl, table('Changes to the guidelines', ['When', 'Who', 'Where', 'Rules before → after'], a.items.slice(0, 20).map((x) => [
      when(x.at), people.name(x.actor_id), x.room_id ? rooms.name(x.room_id) : 'workspace',
      `${(x.before && x.before.rules ? x.before.rules.length : 0)} → ${(x.after && x.after.rules ? x.after.rules.length : 0)} rules`,
    ]), 'No changes yet.'));
  };
  await load();
  await loadAudit();
  put(ctx.main, h('h1', null, 'Communication guidelines'),
    section('Rules', h('p', { class: 'muted' }, 'Every message passes these before anyone sees it. A room\'s rule with the id of a workspace rule replaces it in that room.'), editor),
    manage ? section('Dry run', h('p', { class: 'muted' }, 'See what a text would get. Nothing is stored or sent.'), dry) : null,
    manage ? section('Changes', auditEl) : null);
}

/** The dry run's answer: the verdict, the rewritten text and each hit. */
function verdict(original, r) {
  const bytes = new TextEncoder().encode(original);
  const dec = new TextDecoder();
  const span = (s, e) => dec.decode(bytes.slice(s, e));
  return h('div', { class: `verdict verdict-${r.action}`, 'data-action': r.action },
    h('p', null, h('span', { class: 'label' }, 'Verdict: '), h('strong', { class: `badge action-${r.action}` }, r.action),
      r.rule ? h('span', null, ' by rule ', h('code', null, r.rule)) : null),
    r.text !== null && r.text !== undefined ? h('div', null, h('span', { class: 'label' }, 'Delivered as:'), h('p', { class: 'body-text' }, r.text)) : null,
    table('Hits', ['Rule', 'Action', 'Kind', 'Matched'], (r.hits || []).map((x) => [
      h('code', null, x.rule), x.action, x.kind, x.end > x.start ? h('mark', { class: 'body-text' }, span(x.start, x.end)) : '(the whole message)',
    ]), 'No rule hits this text.'));
}
