// Rooms and their membership; avatars (bots) and their API tokens, whose
// secret is shown once.
import { api } from './api.mjs';
import { field, h, nameOf, put, select, when } from './dom.mjs';
import { act, confirmed, loadPeople, loadRooms, section, status, table } from './ui.mjs';

const ROOM_MANAGERS = new Set(['owner', 'admin', 'keyuser']);

export async function renderRooms(ctx) {
  const manage = ROOM_MANAGERS.has(ctx.wsInfo.role);
  const rooms = await loadRooms(ctx);
  if (ctx.arg && rooms.byId.has(ctx.arg)) return renderRoom(ctx, rooms.byId.get(ctx.arg));
  const st = status();
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const kind = select('kind', [['chat', 'Chat'], ['dialogue', 'Dialogue (entries, replies, stars)']], 'chat');
  const vis = select('visibility', [['workspace', 'Everyone in the workspace'], ['members', 'Only its member list']], 'workspace');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create room');
  const form = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const r = await act(btn, st, () => api('POST', ctx.path('/rooms'), { name: name.value.trim(), kind: kind.value, visibility: vis.value }), 'Created.');
      if (r) {
        ctx.announce(`Room ${r.name} created`);
        ctx.rerender();
      }
    },
  }, field('Name', name), field('Kind', kind), field('Who may join', vis), h('div', { class: 'form-end' }, btn, st.el));
  put(ctx.main, h('h1', null, 'Rooms'),
    manage ? section('New room', form) : null,
    section('Rooms', table('Rooms', ['Room', 'Kind', 'Who may join', 'Messages', 'Created', ''],
      rooms.list.map((r) => [
        h('strong', { class: 'name' }, r.name, r.archived ? h('span', { class: 'badge warn' }, 'archived') : null),
        r.kind, r.visibility === 'members' ? 'member list' : 'workspace', String(r.last_seq ?? ''), when(r.created_at),
        h('a', { href: `#/${ctx.ws}/rooms/${r.id}` }, manage ? 'Manage' : 'Members'),
      ]), 'No rooms yet.')));
}

async function renderRoom(ctx, room) {
  const manage = ROOM_MANAGERS.has(ctx.wsInfo.role);
  const [people, members] = await Promise.all([loadPeople(ctx), api('GET', ctx.path(`/rooms/${room.id}/members`))]);
  const st = status();
  const rename = h('input', { name: 'name', value: room.name, maxlength: 100, required: true });
  const vis = select('visibility', [['workspace', 'Everyone in the workspace'], ['members', 'Only its member list']], room.visibility);
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const settings = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {};
      if (rename.value.trim() !== room.name) body.name = rename.value.trim();
      if (vis.value !== room.visibility) body.visibility = vis.value;
      if (!Object.keys(body).length) return st.ok('Nothing changed.');
      if (body.visibility === 'members' && !confirmed('Only people on the member list will keep access. Continue?')) return;
      if (await act(save, st, () => api('PATCH', ctx.path(`/rooms/${room.id}`), body), 'Saved.')) ctx.rerender();
    },
  }, field('Name', rename), field('Who may join', vis),
  h('div', { class: 'form-end' }, save,
    h('button', {
      type: 'button',
      class: room.archived ? '' : 'danger',
      onclick: async (ev) => {
        if (!room.archived && !confirmed(`Archive ${room.name}? Everyone in it is taken out; nothing more can be sent.`)) return;
        if (await act(ev.target, st, () => api('PATCH', ctx.path(`/rooms/${room.id}`), { archived: !room.archived }), 'Saved.')) ctx.rerender();
      },
    }, room.archived ? 'Unarchive' : 'Archive'), st.el));
  const mst = status();
  const listed = new Set(members.items.map((m) => m.id));
  const candidates = people.list.filter((p) => !p.removed_at && !listed.has(p.id));
  const who = select('person_id', candidates.map((p) => [p.id, `${nameOf(p)}${p.avatar ? ' (avatar)' : ''}`]), '', { 'aria-label': 'Person to add' });
  const add = h('button', { type: 'submit' }, 'Add to the list');
  const addForm = h('form', {
    class: 'row',
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (!who.value) return;
      if (await act(add, mst, () => api('POST', ctx.path(`/rooms/${room.id}/members`), { person_id: who.value }), 'Added.')) ctx.rerender();
    },
  }, field('Person', who), add);
  put(ctx.main,
    h('p', null, h('a', { href: `#/${ctx.ws}/rooms` }, '← All rooms')),
    h('h1', null, room.name),
    h('p', { class: 'muted' }, `${room.kind} room · ${room.last_seq ?? 0} messages · created ${when(room.created_at)}`),
    manage ? section('Settings', settings) : null,
    section('Member list',
      h('p', { class: 'muted' }, members.visibility === 'workspace'
        ? 'Everyone in the workspace may join; the list matters once the room is limited to it.'
        : 'Only the people listed may join.'),
      table('Member list', ['Person', ''], members.items.map((m) => [
        h('span', { class: 'name' }, nameOf(m), m.avatar ? h('span', { class: 'badge' }, 'avatar') : null),
        manage ? h('button', {
          type: 'button',
          class: 'danger',
          onclick: async (ev) => {
            if (await act(ev.target, mst, () => api('DELETE', ctx.path(`/rooms/${room.id}/members/${m.id}`)), 'Taken off the list.')) ctx.rerender();
          },
        }, 'Take off') : '',
      ]), 'Nobody is on the list.'),
      manage ? addForm : null, mst.el));
}

export async function renderAvatars(ctx) {
  const [avatars, rooms] = await Promise.all([api('GET', ctx.path('/avatars')), loadRooms(ctx)]);
  const manage = ctx.wsInfo.role === 'owner' || ctx.wsInfo.role === 'admin';
  const st = status();
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const persona = h('textarea', { name: 'persona', rows: 3, maxlength: 4000 });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create avatar');
  const form = h('form', {
    class: 'stack',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { name: name.value.trim() };
      if (persona.value.trim()) body.persona = persona.value.trim();
      const r = await act(btn, st, () => api('POST', ctx.path('/avatars'), body), 'Created.');
      if (r) {
        ctx.announce(`Avatar ${r.name} created`);
        ctx.rerender();
      }
    },
  }, field('Name', name), field('Persona', persona, 'What the bot is for (shown to consultants).'), btn, st.el);
  const cards = [];
  for (const a of avatars.items) cards.push(await avatarCard(ctx, a, rooms, manage));
  put(ctx.main, h('h1', null, 'Avatars'),
    manage ? section('New avatar', form) : null,
    avatars.items.length ? cards : section('Avatars', h('p', { class: 'muted empty' }, 'No avatars yet.')));
}

async function avatarCard(ctx, a, rooms, manage) {
  const st = status();
  const secretBox = h('div', { class: 'secret', hidden: true });
  const tokensEl = h('div');
  const loadTokens = async () => {
    if (!manage) return;
    const t = await api('GET', ctx.path(`/avatars/${a.id}/tokens`));
    put(tokensEl, table(`Tokens of ${a.name}`, ['Token', 'Rooms', 'Created', 'Expires', ''], t.items.map((k) => [
      h('code', null, `${k.id.slice(0, 8)}…`),
      k.rooms && k.rooms.length ? k.rooms.map((r) => rooms.name(r)).join(', ') : 'all rooms',
      when(k.created_at),
      k.revoked_at ? h('span', { class: 'badge warn' }, `revoked ${when(k.revoked_at)}`) : (k.expires_at ? when(k.expires_at) : 'never'),
      k.revoked_at ? '' : h('button', {
        type: 'button',
        class: 'danger',
        onclick: async (ev) => {
          if (!confirmed('Revoke this token? Bots using it are disconnected.')) return;
          if ((await act(ev.target, st, () => api('DELETE', ctx.path(`/avatars/${a.id}/tokens/${k.id}`)), 'Revoked.')) !== undefined) await loadTokens();
        },
      }, 'Revoke'),
    ]), 'No tokens.'));
  };
  await loadTokens();
  const scope = h('select', { name: 'rooms', multiple: true, size: Math.min(4, Math.max(2, rooms.list.length)), 'aria-label': `Rooms for the new token of ${a.name}` },
    rooms.list.filter((r) => !r.archived).map((r) => h('option', { value: r.id }, r.name)));
  const days = h('input', { name: 'expires_in_days', type: 'number', min: 1, max: 3650, placeholder: 'never' });
  const issue = h('button', { type: 'submit', class: 'primary' }, 'Issue token');
  const issueForm = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {};
      const picked = [...scope.selectedOptions].map((o) => o.value);
      if (picked.length) body.rooms = picked;
      if (days.value) body.expires_in_days = Number(days.value);
      const r = await act(issue, st, () => api('POST', ctx.path(`/avatars/${a.id}/tokens`), body));
      if (!r) return;
      // Shown here once: the server keeps only its hash.
      const code = h('code', { class: 'token', 'data-token': 'new' }, r.token);
      put(secretBox,
        h('p', null, h('strong', null, 'Copy this token now: it will not be shown again.')),
        code,
        h('div', { class: 'row' },
          h('button', {
            type: 'button',
            onclick: async (e2) => {
              try {
                await navigator.clipboard.writeText(r.token);
                e2.target.textContent = 'Copied';
              } catch {
                const sel = window.getSelection();
                const range = document.createRange();
                range.selectNodeContents(code);
                sel.removeAllRanges();
                sel.addRange(range);
                e2.target.textContent = 'Selected: press Ctrl+C';
              }
            },
          }, 'Copy'),
          h('button', { type: 'button', onclick: () => { secretBox.hidden = true; put(secretBox); } }, 'Done, hide it')));
      secretBox.hidden = false;
      ctx.announce(`A new token for ${a.name} is shown once`);
      code.focus?.();
      await loadTokens();
    },
  }, field('Limit to rooms', scope, 'None selected: every room it may see.'), field('Expires after (days)', days), h('div', { class: 'form-end' }, issue));
  const remove = manage ? h('button', {
    type: 'button',
    class: 'danger',
    onclick: async (ev) => {
      if (!confirmed(`Remove the avatar ${a.name}? Its tokens are revoked.`)) return;
      if ((await act(ev.target, st, () => api('DELETE', ctx.path(`/avatars/${a.id}`)), 'Removed.')) !== undefined) ctx.rerender();
    },
  }, 'Remove avatar') : null;
  return h('section', { class: 'card', 'data-avatar': a.name },
    h('h2', null, h('span', { class: 'name' }, a.name), a.removed_at ? h('span', { class: 'badge warn' }, 'removed') : null),
    a.persona ? h('p', { class: 'persona' }, a.persona) : null,
    h('p', { class: 'muted small' }, `Created ${when(a.created_at)}`),
    manage && !a.removed_at ? [secretBox, issueForm, h('h3', null, 'Tokens'), tokensEl, remove] : null,
    st.el);
}
