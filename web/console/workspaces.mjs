// Workspaces: mine, a new one, and the current one's settings.
import { api } from './api.mjs';
import { field, h, put, when } from './dom.mjs';
import { act, section, status, table } from './ui.mjs';

export async function renderWorkspaces(ctx) {
  const list = ctx.me.workspaces || [];
  const name = h('input', { name: 'name', required: true, maxlength: 200 });
  const st = status();
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create workspace');
  const form = h('form', {
    class: 'row',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const w = await act(btn, st, () => api('POST', '/workspaces', { name: name.value.trim() }), 'Created.');
      if (w) {
        await ctx.refreshMe();
        ctx.announce(`Workspace ${w.name} created`);
        ctx.go(w.id, 'invitations');
      }
    },
  }, field('Name', name), btn);
  put(ctx.main,
    h('h1', null, 'Workspaces'),
    section('Your workspaces', table('Your workspaces', ['Workspace', 'Your role', ''],
      list.map((w) => [w.name, w.role, h('a', { href: `#/${w.id}/people` }, 'Open')]), 'You are in no workspace yet: create one.')),
    section('New workspace', h('p', { class: 'muted' }, 'You become its owner; then invite its people.'), form, st.el));
}

export async function renderSettings(ctx) {
  const w = await api('GET', ctx.path(''));
  const name = h('input', { name: 'name', value: w.name, required: true, maxlength: 200 });
  const domains = h('input', { name: 'allowed_domains', value: (w.allowed_domains || []).join(', '), placeholder: 'client.example, other.example' });
  const retention = h('input', { name: 'retention_days', type: 'number', min: 1, max: 36500, value: w.retention_days ?? '' });
  const editWin = h('input', { name: 'edit_window_s', type: 'number', min: 0, max: 604800, value: w.edit_window_s });
  const st = status();
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Save settings');
  const editable = w.role === 'owner' || w.role === 'admin';
  const form = h('form', {
    class: 'stack',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {
        name: name.value.trim(),
        allowed_domains: domains.value.split(',').map((d) => d.trim()).filter(Boolean),
        retention_days: retention.value === '' ? null : Number(retention.value),
        edit_window_s: Number(editWin.value),
      };
      const r = await act(btn, st, () => api('PATCH', ctx.path(''), body), 'Saved.');
      if (r) {
        await ctx.refreshMe();
        ctx.announce('Workspace settings saved');
      }
    },
  },
  field('Name', name),
  field('Allowed email domains', domains, 'Invitations by email only to these domains (empty: any).'),
  field('Keep messages for (days)', retention, 'Empty: keep them.'),
  field('Senders may edit or delete for (seconds)', editWin),
  editable ? btn : h('p', { class: 'muted' }, 'Only owners and admins change these settings.'), st.el);
  put(ctx.main, h('h1', null, w.name),
    section('Settings', h('p', { class: 'muted' }, `Created ${when(w.created_at)} · your role: ${w.role}`), form));
}
