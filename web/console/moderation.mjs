// The moderation queue (held and shadowed messages from the API, flagged
// ones as they are pushed, each with the sender's recent messages; decided
// one by one or many at once), the moderation tools (delete, timed mutes,
// remove, lock, slow mode) and the moderation log.
import { api } from './api.mjs';
import { field, h, put, select, when } from './dom.mjs';
import { act, confirmed, loadPeople, loadRooms, section, status, table } from './ui.mjs';

const MODERATORS = new Set(['owner', 'admin', 'keyuser']);
const DURATIONS = [['600', '10 minutes'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '1 week'], ['2592000', '30 days']];
const CONTEXT = 3; // the sender's messages shown before a held one
const MAX_JOINS = 60; // below the gateway's rooms per connection (64)

export async function renderModeration(ctx) {
  if (!MODERATORS.has(ctx.wsInfo.role)) {
    put(ctx.main, h('h1', null, 'Moderation'), section('Moderation', h('p', null, 'Only owners, admins and key users moderate.')));
    return null;
  }
  const [people, rooms] = await Promise.all([loadPeople(ctx), loadRooms(ctx)]);
  const open = rooms.list.filter((r) => !r.archived);
  /** Queue items by key: "p:<room>:<id>" for pending, "f:<room>:<sender>:<cmid>" for flagged. */
  const items = new Map();
  /** Recent messages per room (history, then live pushes), for context. */
  const recent = new Map();
  const selected = new Set();
  const listEl = h('div', { class: 'queue' });
  const qst = status();
  const reason = h('input', { name: 'reason', maxlength: 500, placeholder: 'optional, recorded in the log', 'aria-label': 'Reason for the decision' });
  const countEl = h('span', { class: 'muted' });

  const pendings = await Promise.all(open.map((r) => api('GET', ctx.path(`/rooms/${r.id}/pending`)).catch(() => ({ items: [] }))));
  pendings.forEach((p, i) => {
    for (const x of p.items) items.set(`p:${open[i].id}:${x.id}`, { kind: 'pending', room: open[i].id, ...x });
  });

  const remember = (room, m) => {
    const list = recent.get(room) || [];
    if (!list.some((x) => x.seq === m.seq)) list.push(m);
    if (list.length > 300) list.splice(0, list.length - 300);
    recent.set(room, list);
  };

  const draw = () => {
    for (const k of [...selected]) if (!items.has(k)) selected.delete(k);
    const sorted = [...items.entries()].sort((a, b) => (a[1].ts || 0) - (b[1].ts || 0));
    countEl.textContent = `${sorted.length} waiting · ${selected.size} selected`;
    put(listEl, sorted.length ? sorted.map(([k, it]) => itemCard(k, it)) : h('p', { class: 'muted empty' }, 'Nothing to review. New held and flagged messages appear here as they come.'));
  };

  const decide = async (keys, how) => {
    const r = reason.value.trim();
    let done = 0;
    let skipped = 0;
    const failures = [];
    for (const k of keys) {
      const it = items.get(k);
      if (!it || it.kind !== 'pending') continue;
      if (how === 'approve' && it.state !== 'held') {
        skipped++; // a shadowed message is never delivered: it can only be dropped
        continue;
      }
      try {
        await api('POST', ctx.path(`/rooms/${it.room}/pending/${it.id}/${how}`), r ? { reason: r } : {});
        items.delete(k);
        done++;
      } catch (e) {
        if (e.code === 'no_such_pending' || e.code === 'not_found') items.delete(k);
        else failures.push(e);
      }
    }
    draw();
    const verb = how === 'approve' ? 'approved' : 'rejected';
    if (failures.length) qst.fail(failures[0]);
    else qst.ok(`${done} ${verb}.${skipped ? ` ${skipped} shadowed left: they can only be dropped.` : ''}`);
    ctx.announce(`${done} message${done === 1 ? '' : 's'} ${verb}`);
  };

  const itemCard = (k, it) => {
    const box = h('input', {
      type: 'checkbox',
      checked: selected.has(k),
      disabled: it.kind !== 'pending',
      'aria-label': `Select the message from ${people.name(it.sender)}`,
      onchange: (ev) => {
        if (ev.target.checked) selected.add(k);
        else selected.delete(k);
        countEl.textContent = `${items.size} waiting · ${selected.size} selected`;
      },
    });
    const st = status();
    const before = (recent.get(it.room) || []).filter((m) => m.sender === it.sender && m.client_msg_id !== it.client_msg_id && (!it.ts || m.ts <= it.ts)).slice(-CONTEXT);
    const label = it.kind === 'pending' ? it.state : 'flagged';
    const buttons = it.kind === 'pending'
      ? [it.state === 'held' ? h('button', { type: 'button', class: 'primary', onclick: () => decide([k], 'approve') }, 'Approve') : null,
        h('button', { type: 'button', class: 'danger', onclick: () => decide([k], 'reject') }, it.state === 'held' ? 'Reject' : 'Drop')]
      : [it.seq ? h('button', {
        type: 'button',
        class: 'danger',
        onclick: async (ev) => {
          const r = reason.value.trim();
          if ((await act(ev.target, st, () => api('POST', ctx.path(`/rooms/${it.room}/messages/${it.seq}/delete`), r ? { reason: r } : {}), 'Deleted.')) !== undefined) {
            items.delete(k);
            draw();
            ctx.announce('Message deleted');
          }
        },
      }, 'Delete message') : null,
      h('button', {
        type: 'button',
        onclick: async (ev) => {
          const r = reason.value.trim();
          const body = { person_id: it.sender, room_id: it.room, duration_s: 3600 };
          if (r) body.reason = r;
          if ((await act(ev.target, st, () => api('POST', ctx.path('/mutes'), body), 'Muted for an hour in this room.')) !== undefined) ctx.announce('Sender muted for an hour');
        },
      }, 'Mute sender 1 h'),
      h('button', { type: 'button', onclick: () => { items.delete(k); draw(); } }, 'Dismiss')];
    return h('article', { class: `item item-${label}`, 'data-state': label, 'data-body': it.body || '' },
      h('header', null, box,
        h('span', { class: `badge state-${label}` }, label),
        h('strong', { class: 'name' }, people.name(it.sender)),
        h('span', { class: 'muted' }, ` in ${rooms.name(it.room)}`),
        it.ts ? h('span', { class: 'muted small' }, ` · ${when(it.ts, true)}`) : null,
        it.rules && it.rules.length ? h('span', { class: 'small' }, ' · rules: ', it.rules.map((r) => h('code', null, typeof r === 'string' ? r : r.rule || r.id || JSON.stringify(r)))) : null),
      h('p', { class: 'body-text' }, it.body === undefined ? '(the message is on its way)' : it.body),
      before.length ? h('details', { class: 'context', open: true },
        h('summary', null, `Recent messages from ${people.name(it.sender)}`),
        h('ol', null, before.map((m) => h('li', null, h('span', { class: 'muted small' }, `${when(m.ts, true)} `), h('span', { class: 'body-text' }, m.deleted ? '(deleted)' : m.body))))) : h('p', { class: 'muted small' }, 'No earlier messages from this sender in view.'),
      h('div', { class: 'row' }, buttons), st.el);
  };

  const selectAll = h('button', {
    type: 'button',
    onclick: () => {
      const all = [...items.entries()].filter(([, it]) => it.kind === 'pending').map(([k]) => k);
      if (selected.size === all.length) selected.clear();
      else all.forEach((k) => selected.add(k));
      draw();
    },
  }, 'Select all / none');
  const approveSel = h('button', { type: 'button', class: 'primary', onclick: () => decide([...selected], 'approve') }, 'Approve selected');
  const rejectSel = h('button', { type: 'button', class: 'danger', onclick: () => decide([...selected], 'reject') }, 'Reject selected');

  // Live: joined rooms push pending (new, decided elsewhere), flagged and messages.
  const client = ctx.client();
  const offs = [];
  const conn = h('span', { class: 'badge', role: 'status' }, 'connecting…');
  offs.push(client.on('state', ({ state }) => {
    conn.textContent = state === 'open' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : state;
    conn.className = `badge conn-${state}`;
  }));
  offs.push(client.on('pending', (p) => {
    const k = `p:${p.room}:${p.id}`;
    if (p.state === 'held' || p.state === 'shadow') {
      if (!items.has(k)) {
        items.set(k, { kind: 'pending', room: p.room, id: p.id, sender: p.sender, client_msg_id: p.client_msg_id, body: p.body, state: p.state, rules: p.rules, ts: p.ts });
        ctx.announce(`New ${p.state} message from ${people.name(p.sender)} in ${rooms.name(p.room)}`);
        draw();
      }
    } else if (items.delete(k)) draw();
  }));
  offs.push(client.on('flagged', (f) => {
    const k = `f:${f.room}:${f.sender}:${f.client_msg_id || f.seq}`;
    const m = (recent.get(f.room) || []).find((x) => (f.seq ? x.seq === f.seq : x.sender === f.sender && x.client_msg_id === f.client_msg_id));
    items.set(k, { kind: 'flagged', room: f.room, sender: f.sender, client_msg_id: f.client_msg_id, rules: f.rules, seq: m ? m.seq : f.seq, body: m ? m.body : undefined, ts: m ? m.ts : Date.now() });
    ctx.announce(`Flagged message from ${people.name(f.sender)} in ${rooms.name(f.room)}`);
    draw();
  }));
  offs.push(client.on('message', (m) => {
    remember(m.room, m);
    let changed = false;
    for (const it of items.values()) {
      if (it.kind === 'flagged' && it.room === m.room && it.sender === m.sender && it.client_msg_id === m.client_msg_id && it.body === undefined) {
        it.body = m.body;
        it.seq = m.seq;
        it.ts = m.ts;
        changed = true;
      }
    }
    if (changed) draw();
  }));
  const joins = open.slice(0, MAX_JOINS).map(async (r) => {
    try {
      const { lastSeq } = await client.join(r.id);
      const hist = await client.history(r.id, { before: lastSeq + 1, limit: 100 });
      for (const m of hist.messages) remember(r.id, m);
    } catch {
      // a members-only room that does not list this moderator: the API's pending list still covers it
    }
  });
  Promise.all(joins).then(() => {
    listEl.dataset.live = 'ready'; // every room joined: what comes now is pushed
    draw();
  });

  draw();
  const tools = await toolsSection(ctx, people, rooms);
  put(ctx.main, h('h1', null, 'Moderation'),
    section('Queue', h('div', { class: 'row toolbar' }, conn, countEl),
      h('p', { class: 'muted' }, 'Held messages wait for a decision; shadowed ones are seen only by their sender and moderators; flagged ones were delivered and are shown while this page is open.'),
      h('div', { class: 'row toolbar' }, selectAll, field('Reason', reason), approveSel, rejectSel), qst.el, listEl),
    tools);
  return () => {
    offs.forEach((off) => off());
    for (const r of open.slice(0, MAX_JOINS)) client.leave(r.id).catch(() => {});
  };
}

async function toolsSection(ctx, people, rooms) {
  const open = rooms.list.filter((r) => !r.archived);
  const roomOpts = open.map((r) => [r.id, r.name]);
  const personOpts = people.list.filter((p) => !p.removed_at && p.id !== ctx.me.id).map((p) => [p.id, `${people.name(p.id)} (${p.role})`]);
  // room settings
  const sst = status();
  const sRoom = select('room', roomOpts, open[0] && open[0].id, { 'aria-label': 'Room' });
  const locked = h('input', { type: 'checkbox', name: 'locked' });
  const slow = h('input', { type: 'number', name: 'slow_mode_s', min: 0, max: 86400, value: 0 });
  const sReason = h('input', { maxlength: 500, 'aria-label': 'Reason' });
  const fill = () => {
    const r = rooms.byId.get(sRoom.value);
    locked.checked = !!(r && r.locked);
    slow.value = (r && r.slow_mode_s) || 0;
  };
  sRoom.addEventListener('change', fill);
  fill();
  const sBtn = h('button', { type: 'submit', class: 'primary' }, 'Apply');
  const settings = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { locked: locked.checked, slow_mode_s: Number(slow.value) || 0 };
      if (sReason.value.trim()) body.reason = sReason.value.trim();
      const r = await act(sBtn, sst, () => api('PATCH', ctx.path(`/rooms/${sRoom.value}/moderation`), body), 'Applied.');
      if (r) {
        Object.assign(rooms.byId.get(sRoom.value), { locked: body.locked, slow_mode_s: body.slow_mode_s });
        ctx.announce('Room settings applied');
      }
    },
  }, field('Room', sRoom), h('label', { class: 'check' }, locked, 'Locked (read-only but for moderators)'), field('Slow mode (seconds, 0: off)', slow), field('Reason', sReason), h('div', { class: 'form-end' }, sBtn, sst.el));
  // mute
  const mst = status();
  const mWho = select('person_id', personOpts, '', { 'aria-label': 'Person' });
  const mWhere = select('room_id', [['', 'Whole workspace'], ...roomOpts], '', { 'aria-label': 'Where' });
  const mFor = select('duration_s', DURATIONS, '3600', { 'aria-label': 'For' });
  const mReason = h('input', { maxlength: 500, 'aria-label': 'Reason' });
  const mBtn = h('button', { type: 'submit', class: 'primary' }, 'Mute');
  const mutesEl = h('div');
  const loadMutes = async () => {
    const m = await api('GET', ctx.path('/mutes'));
    put(mutesEl, table('Active mutes', ['Person', 'Where', 'Until', 'Reason', ''], m.items.map((x) => [
      people.name(x.person_id), x.room_id ? rooms.name(x.room_id) : 'whole workspace', when(x.until), x.reason || '',
      h('button', {
        type: 'button',
        onclick: async (ev) => {
          const body = { person_id: x.person_id };
          if (x.room_id) body.room_id = x.room_id;
          if ((await act(ev.target, mst, () => api('POST', ctx.path('/mutes/lift'), body), 'Lifted.')) !== undefined) await loadMutes();
        },
      }, 'Lift'),
    ]), 'Nobody is muted.'));
  };
  const mute = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { person_id: mWho.value, duration_s: Number(mFor.value) };
      if (mWhere.value) body.room_id = mWhere.value;
      if (mReason.value.trim()) body.reason = mReason.value.trim();
      if ((await act(mBtn, mst, () => api('POST', ctx.path('/mutes'), body), 'Muted.')) !== undefined) {
        ctx.announce('Muted');
        await loadMutes();
      }
    },
  }, field('Person', mWho), field('Where', mWhere), field('For', mFor), field('Reason', mReason), h('div', { class: 'form-end' }, mBtn, mst.el));
  // remove
  const rst = status();
  const rWho = select('person_id', personOpts, '', { 'aria-label': 'Person' });
  const rRoom = select('room', roomOpts, '', { 'aria-label': 'From room' });
  const rReason = h('input', { maxlength: 500, 'aria-label': 'Reason' });
  const rBtn = h('button', { type: 'submit', class: 'danger' }, 'Remove from room');
  const remove = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (!confirmed('Remove this person from the room? They cannot join again until added back.')) return;
      const body = { person_id: rWho.value };
      if (rReason.value.trim()) body.reason = rReason.value.trim();
      if ((await act(rBtn, rst, () => api('POST', ctx.path(`/rooms/${rRoom.value}/remove`), body), 'Removed from the room.')) !== undefined) ctx.announce('Removed from the room');
    },
  }, field('Person', rWho), field('Room', rRoom), field('Reason', rReason), h('div', { class: 'form-end' }, rBtn, rst.el));
  // delete
  const dst = status();
  const dRoom = select('room', roomOpts, '', { 'aria-label': 'Room' });
  const dSeq = h('input', { type: 'number', min: 1, required: true, 'aria-label': 'Message number (seq)' });
  const dReason = h('input', { maxlength: 500, 'aria-label': 'Reason' });
  const dBtn = h('button', { type: 'submit', class: 'danger' }, 'Delete message');
  const del = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {};
      if (dReason.value.trim()) body.reason = dReason.value.trim();
      if ((await act(dBtn, dst, () => api('POST', ctx.path(`/rooms/${dRoom.value}/messages/${Number(dSeq.value)}/delete`), body), 'Deleted: its text is gone, a stub keeps its place.')) !== undefined) ctx.announce('Message deleted');
    },
  }, field('Room', dRoom), field('Message number', dSeq), field('Reason', dReason), h('div', { class: 'form-end' }, dBtn, dst.el));
  await loadMutes();
  return [
    section('Lock and slow mode', settings),
    section('Timed mute', mute, h('h3', null, 'Active mutes'), mutesEl),
    section('Remove from a room', remove),
    section('Delete a message', del),
  ];
}

const ACTION_TEXT = {
  approve: 'approved a held message', reject: 'rejected a held message', delete: 'deleted a message',
  mute: 'muted', unmute: 'lifted a mute', remove: 'removed from a room', settings: 'changed room settings',
};

export async function renderLog(ctx) {
  if (!MODERATORS.has(ctx.wsInfo.role)) {
    put(ctx.main, h('h1', null, 'Moderation log'), section('Moderation log', h('p', null, 'Only owners, admins and key users read the log.')));
    return;
  }
  const [people, rooms] = await Promise.all([loadPeople(ctx), loadRooms(ctx)]);
  const roomSel = select('room', [['', 'All rooms'], ...rooms.list.map((r) => [r.id, r.name])], '', { 'aria-label': 'Room' });
  const listEl = h('div');
  const st = status();
  const load = async () => {
    const q = roomSel.value ? `?room=${encodeURIComponent(roomSel.value)}` : '';
    const l = await api('GET', ctx.path(`/moderation/log${q}`));
    put(listEl, table('Moderation log', ['When', 'Who', 'Action', 'Whom / what', 'Room', 'Reason'], l.items.map((x) => h('tr', { 'data-action': x.action },
      h('td', null, when(x.at, true)), h('td', null, people.name(x.actor_id)),
      h('td', null, ACTION_TEXT[x.action] || x.action),
      h('td', null, [x.target_person ? people.name(x.target_person) : null, x.target_seq ? `message ${x.target_seq}` : null, x.target_pending ? `held #${x.target_pending}` : null,
        x.detail && typeof x.detail === 'object' ? Object.entries(x.detail).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ') : null].filter(Boolean).join(' · ')),
      h('td', null, x.room_id ? rooms.name(x.room_id) : 'workspace'),
      h('td', { class: 'body-text' }, x.reason || ''))), 'No moderation actions yet.'));
  };
  roomSel.addEventListener('change', () => load().catch((e) => st.fail(e)));
  await load();
  put(ctx.main, h('h1', null, 'Moderation log'), section('Newest 200 actions', field('Room', roomSel), st.el, listEl));
}
