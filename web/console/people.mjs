// People and roles with their org fields, and invitations with the state of
// their delivery through the outbox.
import { api } from './api.mjs';
import { field, formData, h, nameOf, put, select, when } from './dom.mjs';
import { act, confirmed, loadPeople, section, status, table } from './ui.mjs';

const MANAGERS = new Set(['owner', 'admin']);
/** Roles a manager may give (API.md: nobody grants owner, support or avatar). */
const GRANTABLE = (myRole) => (myRole === 'owner' ? ['admin', 'keyuser', 'member'] : ['keyuser', 'member']);

function superiorSelect(people, value, self) {
  return select('superior_id',
    [['', '— none —'], ...people.list.filter((p) => !p.removed_at && !p.avatar && p.id !== self).map((p) => [p.id, nameOf(p)])],
    value || '');
}

export async function renderPeople(ctx) {
  const people = await loadPeople(ctx);
  const myRole = ctx.wsInfo.role;
  const manage = MANAGERS.has(myRole);
  const rows = people.list.filter((p) => !p.avatar).map((p) => personRow(ctx, p, people, manage, myRole));
  put(ctx.main, h('h1', null, 'People and roles'),
    section('People', h('p', { class: 'muted' }, manage
      ? 'Title, department and superior belong to this workspace; names are each person\'s own.'
      : 'Only owners and admins change roles and org fields.'),
    table('People of the workspace', ['Person', 'Role', 'Title', 'Department', 'Superior', ''], rows, 'Nobody here yet: invite people.')));
}

function personRow(ctx, p, people, manage, myRole) {
  const st = status();
  const canEdit = manage && p.id !== ctx.me.id && GRANTABLE(myRole).includes(p.role) && !p.removed_at;
  const who = h('div', { class: 'person' }, h('strong', { class: 'name' }, nameOf(p)),
    p.email ? h('span', { class: 'muted small' }, p.email) : null,
    p.phone ? h('span', { class: 'muted small' }, p.phone) : null,
    p.removed_at ? h('span', { class: 'badge warn' }, `removed ${when(p.removed_at)}`) : null);
  if (!canEdit) {
    const restore = manage && p.removed_at
      ? h('button', {
        type: 'button',
        onclick: async (ev) => {
          if (await act(ev.target, st, () => api('POST', ctx.path(`/people/${p.id}/restore`)), 'Restored.')) ctx.rerender();
        },
      }, 'Restore')
      : null;
    return h('tr', null, h('td', null, who), h('td', null, h('span', { class: `badge role-${p.role}` }, p.role)),
      h('td', null, p.title || ''), h('td', null, p.department || ''), h('td', null, p.superior_id ? people.name(p.superior_id) : ''),
      h('td', null, restore, st.el));
  }
  const role = select('role', GRANTABLE(myRole).map((r) => [r, r]), p.role, { 'aria-label': `Role of ${nameOf(p)}` });
  const title = h('input', { name: 'title', value: p.title || '', maxlength: 200, 'aria-label': `Title of ${nameOf(p)}` });
  const dept = h('input', { name: 'department', value: p.department || '', maxlength: 200, 'aria-label': `Department of ${nameOf(p)}` });
  const sup = superiorSelect(people, p.superior_id, p.id);
  sup.setAttribute('aria-label', `Superior of ${nameOf(p)}`);
  const save = h('button', {
    type: 'button',
    onclick: async (ev) => {
      const body = {};
      if (role.value !== p.role) body.role = role.value;
      if (title.value.trim() !== (p.title || '')) body.title = title.value.trim() || null;
      if (dept.value.trim() !== (p.department || '')) body.department = dept.value.trim() || null;
      if ((sup.value || null) !== (p.superior_id || null)) body.superior_id = sup.value || null;
      if (!Object.keys(body).length) {
        st.ok('Nothing changed.');
        return;
      }
      const r = await act(ev.target, st, () => api('PATCH', ctx.path(`/people/${p.id}`), body), 'Saved.');
      if (r) {
        Object.assign(p, r);
        ctx.announce(`${nameOf(p)} saved`);
      }
    },
  }, 'Save');
  const remove = h('button', {
    type: 'button',
    class: 'danger',
    onclick: async (ev) => {
      if (!confirmed(`Remove ${nameOf(p)} from the workspace? Their access ends now; their messages stay.`)) return;
      if (await act(ev.target, st, () => api('DELETE', ctx.path(`/people/${p.id}`)), 'Removed.')) ctx.rerender();
    },
  }, 'Remove');
  return h('tr', null, h('td', null, who), h('td', null, role), h('td', null, title), h('td', null, dept),
    h('td', null, sup), h('td', { class: 'actions' }, save, remove, st.el));
}

const DELIVERY = {
  queued: 'waiting for the mailer',
  leased: 'being delivered',
  retrying: 'delivery failed for now, will retry',
  sent: 'delivered',
  failed: 'delivery failed',
};

export async function renderInvitations(ctx) {
  const manage = MANAGERS.has(ctx.wsInfo.role);
  if (!manage) {
    put(ctx.main, h('h1', null, 'Invitations'), section('Invitations', h('p', null, 'Only owners and admins invite people.')));
    return;
  }
  const [people, invs] = await Promise.all([loadPeople(ctx), api('GET', ctx.path('/invitations'))]);
  const st = status();
  const how = select('how', [['email', 'Email'], ['phone', 'Mobile phone']], 'email', { 'aria-label': 'Invite by' });
  const addr = h('input', { name: 'address', type: 'email', required: true, autocomplete: 'off', placeholder: 'name@client.example' });
  how.addEventListener('change', () => {
    addr.type = how.value === 'email' ? 'email' : 'tel';
    addr.placeholder = how.value === 'email' ? 'name@client.example' : '+41791234567';
  });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Send invitation');
  const form = h('form', {
    class: 'grid-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const d = formData(form);
      const body = { role: d.role };
      body[how.value === 'email' ? 'email' : 'phone'] = addr.value.trim();
      for (const k of ['first_name', 'last_name', 'title', 'department', 'superior_id']) if (d[k]) body[k] = d[k].trim();
      const r = await act(btn, st, () => api('POST', ctx.path('/invitations'), body), 'Invitation queued for delivery.');
      if (r) {
        ctx.announce(`Invitation to ${r.email || r.phone} queued`);
        form.reset();
        how.dispatchEvent(new Event('change'));
        await refresh();
      }
    },
  },
  field('Invite by', how), field('Address', addr, 'Email, or an E.164 mobile number (+ and 8 to 15 digits).'),
  field('Role', select('role', GRANTABLE(ctx.wsInfo.role).map((r) => [r, r]), 'member')),
  field('First name', h('input', { name: 'first_name', maxlength: 100 })),
  field('Last name', h('input', { name: 'last_name', maxlength: 100 })),
  field('Title', h('input', { name: 'title', maxlength: 200 })),
  field('Department', h('input', { name: 'department', maxlength: 200 })),
  field('Superior', superiorSelect(people, '', null)),
  h('div', { class: 'form-end' }, btn, st.el));
  const listEl = h('div');
  const refresh = async () => {
    const r = await api('GET', ctx.path('/invitations'));
    put(listEl, invitationTable(ctx, r.items, refresh));
  };
  put(listEl, invitationTable(ctx, invs.items, refresh));
  const reload = h('button', { type: 'button', onclick: () => refresh().catch((e) => st.fail(e)) }, 'Refresh states');
  put(ctx.main, h('h1', null, 'Invitations'),
    section('Invite someone', h('p', { class: 'muted' }, 'The invitation goes out through the operator\'s mailer or SMS gateway; you never see its secret.'), form),
    section('Sent invitations', reload, listEl));
  // The mailer works in the background: follow its progress while open.
  const timer = setInterval(() => refresh().catch(() => {}), 15000);
  return () => clearInterval(timer);
}

function invitationTable(ctx, items, refresh) {
  return table('Invitations', ['To', 'Role', 'Invitation', 'Delivery', 'Sent', ''], items.map((i) => {
    const st = status();
    const d = i.delivery;
    const delivery = d
      ? h('span', { class: `badge delivery-${d.state}`, 'data-delivery': d.state }, DELIVERY[d.state] || d.state,
        d.attempts > 1 ? ` (${d.attempts} attempts)` : '')
      : h('span', { class: 'muted' }, '—');
    const revoke = i.status === 'pending'
      ? h('button', {
        type: 'button',
        class: 'danger',
        onclick: async (ev) => {
          if (!confirmed(`Revoke the invitation to ${i.email || i.phone}?`)) return;
          if (await act(ev.target, st, () => api('DELETE', ctx.path(`/invitations/${i.id}`)), 'Revoked.')) await refresh();
        },
      }, 'Revoke')
      : null;
    const to = h('div', { class: 'person' }, h('strong', { class: 'name' }, i.email || i.phone),
      i.profile && (i.profile.first_name || i.profile.last_name)
        ? h('span', { class: 'muted small' }, [i.profile.first_name, i.profile.last_name].filter(Boolean).join(' ')) : null);
    return h('tr', { 'data-invitation': i.email || i.phone },
      h('td', null, to), h('td', null, i.role),
      h('td', null, h('span', { class: `badge status-${i.status}` }, i.status), h('span', { class: 'muted small' }, ` until ${when(i.expires_at)}`)),
      h('td', null, delivery, d && d.error && d.state === 'failed' ? h('div', { class: 'small error-text' }, d.error) : null),
      h('td', null, d && d.sent_at ? when(d.sent_at) : when(i.created_at)),
      h('td', null, revoke, st.el));
  }), 'No invitations yet.');
}
