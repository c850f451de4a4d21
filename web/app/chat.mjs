// A room: chat (a windowed message list with scroll-back, likes, "seen by",
// pending / held / failed sends, edit and delete) and dialogue (entries by
// newest or rating, stars, replies). State lives in RoomModel (room.mjs).

import { html, useEffect, useMemo, useRef, useState } from '../vendor/preact-htm.mjs';
import { humanError } from './errors.mjs';
import { RoomModel } from './room.mjs';
import { ErrorLine, formatTime, fullTime } from './ui.mjs';
import { VirtualList } from './vlist.mjs';

const TYPING_EVERY_MS = 1000; // the server sends at most one typing event a second

/** Re-renders the component whenever the model changes. */
function useModel(model) {
  const [, setV] = useState(0);
  useEffect(() => (model ? model.subscribe(() => setV(model.version)) : undefined), [model]);
}

/**
 * An open room.
 * @param {{client: any, room: object, me: string, names: Map<string, string>, editWindowS: number}} props
 */
export function RoomView({ client, room, me, names, editWindowS }) {
  const model = useMemo(() => new RoomModel(client, room, me), [client, room.id, me]);
  useModel(model);
  useEffect(() => {
    model.open();
    return () => model.close();
  }, [model]);
  const name = (id) => names.get(id) || 'Someone';
  const ctx = { model, me, name, editWindowS };
  return html`<section class="room-view" aria-labelledby="room-title">
    <header class="room-head">
      <h1 id="room-title">${room.kind === 'dialogue' ? '» ' : '# '}${room.name}</h1>
      <${Presence} model=${model} name=${name} />
    </header>
    ${model.removed && html`<p class="error" role="alert">${removedText(model.removed)}</p>`}
    ${model.settings && model.settings.locked && html`<p class="notice">This room is read-only.</p>`}
    <${ErrorLine} error=${model.error} />
    ${room.kind === 'dialogue' ? html`<${Dialogue} ...${ctx} />` : html`<${Chat} ...${ctx} />`}
    <${LiveRegion} model=${model} name=${name} />
  </section>`;
}

function removedText(reason) {
  return (
    {
      removed: 'A moderator removed you from this room.',
      not_a_member: 'You are no longer on this room’s member list.',
      archived: 'This room was archived.',
      deleted: 'This room was deleted.',
    }[reason] || 'You are no longer in this room.'
  );
}

/** "3 online: Ana, Ben" from presence pushes. */
function Presence({ model, name }) {
  const p = model.presence();
  if (!p) return null;
  const people = p.online ? [...new Set(p.online.map((o) => name(o.person)))] : [];
  return html`<p class="presence" title=${people.join(', ')}>
    <span class="dot online" aria-hidden="true"></span>
    <span>${`${p.count} online`}${people.length
      ? html`<span class="who">: ${people.slice(0, 5).map((n, i) => html`${i ? ', ' : ''}<bdi>${n}</bdi>`)}${people.length > 5 ? '…' : ''}</span>`
      : ''}</span>
  </p>`;
}

/** Announces other people's new messages to screen readers (one at a time). */
function LiveRegion({ model, name }) {
  const [text, setText] = useState('');
  useEffect(() => {
    const m = model.announcements.shift();
    if (m) {
      model.announcements.length = 0;
      setText(`${name(m.sender)}: ${m.deleted ? 'deleted message' : m.body.slice(0, 300)}`);
    }
  });
  return html`<div class="sr-only" aria-live="polite" aria-atomic="true" id="live">${text}</div>`;
}

/** Who is typing. */
function Typing({ model, name }) {
  const who = model.typingNow().map(name).slice(0, 3);
  // Each name in its own <bdi>: a right-to-left override in a name must not
  // turn the rest of the sentence around.
  return html`<p class="typing" aria-hidden=${who.length ? 'false' : 'true'}>
    ${who.map((n, i) => html`${i ? ', ' : ''}<bdi>${n}</bdi>`)}${who.length ? ` ${who.length > 1 ? 'are' : 'is'} typing…` : ''}
  </p>`;
}

/* ---- chat ---------------------------------------------------------------- */

function Chat({ model, me, name, editWindowS }) {
  const api = useRef(null);
  const [scroll, setScroll] = useState({ atBottom: true, lastVisible: null });
  const [seenNew, setSeenNew] = useState(0); // seq when the reader last was at the bottom
  const [firstUnreadShown, setFirstUnreadShown] = useState(true);
  const [editing, setEditing] = useState(null); // seq being edited
  const [error, setError] = useState(null);

  const items = [
    ...(model.hasOlder ? [{ key: 'older', older: true }] : []),
    ...model.messages.map((m) => ({ key: `m${m.seq}`, m })),
    ...[...model.outgoing.values()].map((o) => ({ key: `o${o.clientMsgId}`, o })),
  ];
  const newest = model.messages.length ? model.messages[model.messages.length - 1].seq : 0;
  // Unread when the room opened: what arrives while it is open is read live.
  const firstUnread =
    model.upToAtOpen < model.lastAtOpen
      ? model.messages.find((m) => m.seq > model.upToAtOpen && m.seq <= model.lastAtOpen && m.sender !== me)
      : null;

  // Read up to what is on screen.
  useEffect(() => {
    const v = scroll.lastVisible;
    if (v && v.m && document.visibilityState === 'visible') model.markRead(v.m.seq);
    if (scroll.atBottom) setSeenNew(newest);
  }, [scroll, newest]);
  const unseen = scroll.atBottom ? 0 : model.messages.filter((m) => m.seq > seenNew && m.sender !== me).length;

  const jumpToFirstUnread = async () => {
    setError(null);
    try {
      await model.loadUntil(model.upToAtOpen + 1);
      const m = model.messages.find((x) => x.seq > model.upToAtOpen && x.seq <= model.lastAtOpen && x.sender !== me);
      if (m) requestAnimationFrame(() => api.current && api.current.scrollToKey(`m${m.seq}`));
      setFirstUnreadShown(false);
    } catch (e) {
      setError(e);
    }
  };

  const act = (p) => p.catch((e) => setError(e));
  const render = (it) => {
    if (it.older) return html`<p class="older muted">${model.loadingOlder ? 'Loading earlier messages…' : 'Scroll up for earlier messages'}</p>`;
    if (it.o) return html`<${OutgoingItem} o=${it.o} model=${model} />`;
    const m = it.m;
    return html`<${MessageItem}
      m=${m}
      mine=${m.sender === me}
      sender=${name(m.sender)}
      liked=${model.myLikes.has(m.seq)}
      canChange=${m.sender === me && !m.deleted && Date.now() - m.ts < editWindowS * 1000}
      seen=${model.seenBy && model.seenBy.seq === m.seq ? othersSeen(model.seenBy, me) : null}
      name=${name}
      firstUnread=${firstUnread && firstUnread.seq === m.seq}
      editing=${editing === m.seq}
      onLike=${() => act(model.toggleLike(m.seq))}
      onEdit=${() => setEditing(m.seq)}
      onCancelEdit=${() => setEditing(null)}
      onSaveEdit=${(body) =>
        act(
          model.client.edit(model.id, m.seq, body).then(() => setEditing(null)),
        )}
      onDelete=${() => act(model.client.deleteMessage(model.id, m.seq))}
    />`;
  };

  return html`<div class="chat">
    ${firstUnread && firstUnreadShown &&
    html`<div class="jump-bar">
      <button type="button" class="jump" onClick=${jumpToFirstUnread}>Jump to first unread</button>
      <button type="button" class="linkish" aria-label="Dismiss" onClick=${() => setFirstUnreadShown(false)}>×</button>
    </div>`}
    ${!model.ready && !model.error && html`<p role="status" class="muted loading">Loading messages…</p>`}
    <${VirtualList}
      items=${items}
      keyOf=${(it) => it.key}
      render=${render}
      api=${api}
      label="Messages"
      class="messages"
      onNearTop=${() => model.ready && model.loadOlder().catch((e) => setError(e))}
      onScrollState=${(s) =>
        // Items are new objects on every render: compare keys, or this loops.
        setScroll((prev) =>
          prev.atBottom === s.atBottom && (prev.lastVisible && prev.lastVisible.key) === (s.lastVisible && s.lastVisible.key)
            ? prev
            : s,
        )}
    />
    ${unseen > 0 &&
    html`<button type="button" class="new-below" onClick=${() => api.current.scrollToBottom()}>
      ${unseen} new message${unseen > 1 ? 's' : ''} ↓
    </button>`}
    <${ErrorLine} error=${error} />
    <${Typing} model=${model} name=${name} />
    <${Composer} model=${model} label="Message" placeholder="Write a message" onSent=${() => api.current && api.current.scrollToBottom()} />
  </div>`;
}

/** "Seen by k of n" counts the others: not me, who sent it. */
function othersSeen(s, me) {
  const seen = s.seen.filter((x) => x.person !== me);
  const meCounted = s.seen.length !== seen.length || s.of > 0;
  return { ...s, seen, count: seen.length, of: Math.max(0, s.of - (meCounted ? 1 : 0)) };
}

/** One chat message. */
function MessageItem(p) {
  const { m } = p;
  const [showSeen, setShowSeen] = useState(false);
  const [draft, setDraft] = useState(m.body);
  const [confirmDelete, setConfirmDelete] = useState(false);
  return html`<article
    class=${`msg${p.mine ? ' mine' : ''}${m.deleted ? ' deleted' : ''}`}
    data-seq=${m.seq}
    aria-label=${`${p.sender}, ${formatTime(m.ts)}`}
  >
    ${p.firstUnread && html`<p class="unread-mark" id="first-unread">New since your last visit</p>`}
    <header>
      <span class="sender">${p.sender}</span>${m.avatar && html`<span class="tag">bot</span>`}
      <time datetime=${new Date(m.ts).toISOString()} title=${fullTime(m.ts)}>${formatTime(m.ts)}</time>
      ${m.edited && !m.deleted && html`<span class="muted">(edited)</span>`}
    </header>
    ${m.deleted
      ? html`<p class="body muted">Message deleted</p>`
      : p.editing
        ? html`<form
            class="edit"
            onSubmit=${(e) => {
              e.preventDefault();
              if (draft.trim()) p.onSaveEdit(draft);
            }}
          >
            <label class="sr-only" for=${`edit-${m.seq}`}>Edit message</label>
            <textarea id=${`edit-${m.seq}`} value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)} rows="2"></textarea>
            <button type="submit" class="primary">Save</button>
            <button type="button" onClick=${p.onCancelEdit}>Cancel</button>
          </form>`
        : html`<p class="body">${m.body}</p>`}
    ${!m.deleted &&
    html`<footer class="msg-actions">
      <button
        type="button"
        class=${`like${p.liked ? ' on' : ''}`}
        aria-pressed=${p.liked ? 'true' : 'false'}
        aria-label=${`Like (${m.likes || 0})`}
        onClick=${p.onLike}
      >
        ♥ <span class="count">${m.likes || 0}</span>
      </button>
      ${p.canChange &&
      !p.editing &&
      html`<button type="button" class="linkish" onClick=${p.onEdit}>Edit</button>
        ${confirmDelete
          ? html`<span class="confirm">Delete?
              <button type="button" class="danger" onClick=${p.onDelete}>Delete</button>
              <button type="button" onClick=${() => setConfirmDelete(false)}>Keep</button></span>`
          : html`<button type="button" class="linkish" onClick=${() => setConfirmDelete(true)}>Delete</button>`}`}
      ${p.seen &&
      html`<button type="button" class="linkish seen-by" aria-expanded=${showSeen ? 'true' : 'false'} onClick=${() => setShowSeen(!showSeen)}>
        Seen by ${p.seen.count} of ${p.seen.of}
      </button>`}
    </footer>`}
    ${p.seen &&
    showSeen &&
    html`<ul class="seen-list">
      ${p.seen.seen.length
        ? p.seen.seen.map((s) => html`<li key=${s.person}>${p.name(s.person)}</li>`)
        : html`<li class="muted">Nobody yet</li>`}
    </ul>`}
  </article>`;
}

/** One of my sends not (yet) in the room. */
function OutgoingItem({ o, model }) {
  const states = {
    pending: ['Sending…', 'pending'],
    sent: ['Sent', 'pending'],
    held: ['Held for review: the workspace’s guidelines asked a moderator to look at it first. Only you can see it.', 'held'],
    rejected: ['Not published: a moderator rejected it.', 'failed'],
    failed: [`Not sent: ${humanError(o.error)}`, 'failed'],
  };
  const [text, cls] = states[o.state] || states.pending;
  return html`<article class=${`msg mine outgoing ${cls}`} data-cmid=${o.clientMsgId} data-state=${o.state}>
    <header><span class="sender">You</span>${o.parent && html`<span class="muted"> reply</span>`}</header>
    <p class="body">${o.body}</p>
    <footer class="msg-actions">
      <span class="status" role="status">${text}</span>
      ${o.state === 'pending' && o.error && html`<span class="muted"> (${humanError(o.error)})</span>`}
      ${o.state === 'failed' && html`<button type="button" class="linkish" onClick=${() => model.retry(o.clientMsgId)}>Try again</button>`}
      ${(o.state === 'failed' || o.state === 'rejected') &&
      html`<button type="button" class="linkish" onClick=${() => model.dismiss(o.clientMsgId)}>Dismiss</button>`}
    </footer>
  </article>`;
}

/** The message box: Enter sends, Shift+Enter breaks the line. */
function Composer({ model, label, placeholder, parent, onSent, id = 'composer' }) {
  const [text, setText] = useState('');
  const lastTyping = useRef(0);
  const send = () => {
    const body = text.trim();
    if (!body || !model.ready) return;
    model.send(text, parent);
    setText('');
    if (onSent) onSent();
  };
  const onInput = (e) => {
    setText(e.currentTarget.value);
    const now = Date.now();
    if (now - lastTyping.current > TYPING_EVERY_MS) {
      lastTyping.current = now;
      model.client.typing(model.id).catch(() => {});
    }
  };
  return html`<form
    class="composer"
    onSubmit=${(e) => {
      e.preventDefault();
      send();
    }}
  >
    <label for=${id} class="sr-only">${label}</label>
    <textarea
      id=${id}
      rows="1"
      placeholder=${placeholder}
      value=${text}
      onInput=${onInput}
      onKeyDown=${(e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          send();
        }
      }}
    ></textarea>
    <button type="submit" class="primary" disabled=${!model.ready}>Send</button>
  </form>`;
}

/* ---- dialogue ------------------------------------------------------------ */

function Dialogue({ model, me, name }) {
  const [sort, setSort] = useState('newest');
  const [entries, setEntries] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(new Set()); // entries whose replies are shown
  const reload = useRef(null);

  useEffect(() => {
    if (!model.ready) return undefined; // entries need the join
    let live = true;
    let timer = null;
    const load = () =>
      model.client
        .entries(model.id, { sort, limit: 50 })
        .then((r) => live && setEntries(r.entries))
        .catch((e) => live && setError(e));
    reload.current = () => {
      clearTimeout(timer);
      timer = setTimeout(load, 200);
    };
    load();
    const c = model.client;
    const mine = (p) => p.room === model.id;
    const offs = [
      c.on('message', (m) => mine(m) && m.kind !== 'reply' && reload.current()),
      c.on('votes', (p) => mine(p) && reload.current()),
      c.on('delete', (p) => mine(p) && reload.current()),
      c.on('edit', (p) => mine(p) && reload.current()),
    ];
    return () => {
      live = false;
      clearTimeout(timer);
      offs.forEach((f) => f());
    };
  }, [model, sort, model.ready]);

  // Entries seen: everything on screen counts as read.
  useEffect(() => {
    if (!entries || !model.ready) return;
    const top = Math.max(0, ...model.messages.map((m) => m.seq));
    if (top) model.markRead(top);
  }, [entries, model.version]);

  const replies = (seq) => model.messages.filter((m) => m.parent === seq);
  const rate = (seq, stars) => model.rate(seq, stars).catch((e) => setError(e));
  const toggle = (seq) => {
    const n = new Set(open);
    if (n.has(seq)) n.delete(seq);
    else n.add(seq);
    setOpen(n);
  };
  const held = [...model.outgoing.values()];

  return html`<div class="dialogue">
    <div class="dialogue-tools">
      <label for="sort">Sort by</label>
      <select id="sort" value=${sort} onChange=${(e) => setSort(e.currentTarget.value)}>
        <option value="newest">Newest</option>
        <option value="rating">Rating</option>
      </select>
    </div>
    <${Composer} model=${model} label="New entry" placeholder="Write an entry" id="entry-composer" />
    <${ErrorLine} error=${error} />
    ${held.map((o) => html`<${OutgoingItem} key=${o.clientMsgId} o=${o} model=${model} />`)}
    ${!entries && html`<p role="status" class="muted">Loading entries…</p>`}
    ${entries && !entries.length && html`<p class="muted">No entries yet. Write the first one.</p>`}
    <ol class="entries" aria-label="Entries">
      ${(entries || []).map((e) => {
        const live = model.bySeq.get(e.seq);
        const cur = live && (live.v || 0) >= (e.v || 0) ? { ...e, ...live, replies: e.replies } : e;
        const rs = replies(e.seq);
        return html`<li key=${e.seq} class="entry" data-seq=${e.seq}>
          <article>
            <header>
              <span class="sender">${name(cur.sender)}</span>
              <time datetime=${new Date(cur.ts).toISOString()} title=${fullTime(cur.ts)}>${formatTime(cur.ts)}</time>
            </header>
            <p class="body">${cur.deleted ? 'Entry deleted' : cur.body}</p>
            <footer class="entry-foot">
              <${Stars} seq=${e.seq} mine=${model.myStars.get(e.seq)} avg=${cur.star_avg} count=${cur.stars} onRate=${rate} />
              <button type="button" class="linkish" aria-expanded=${open.has(e.seq) ? 'true' : 'false'} onClick=${() => toggle(e.seq)}>
                ${cur.replies || rs.length} ${(cur.replies || rs.length) === 1 ? 'reply' : 'replies'}
              </button>
            </footer>
            ${open.has(e.seq) &&
            html`<div class="replies">
              <ul>
                ${rs.map(
                  (r) => html`<li key=${r.seq} class="reply" data-seq=${r.seq}>
                    <span class="sender">${name(r.sender)}</span>
                    <p class="body">${r.deleted ? 'Reply deleted' : r.body}</p>
                    <${Stars} seq=${r.seq} mine=${model.myStars.get(r.seq)} avg=${r.star_avg} count=${r.stars} onRate=${rate} small />
                  </li>`,
                )}
              </ul>
              ${model.hasOlder && rs.length < (cur.replies || 0) &&
              html`<button type="button" class="linkish" onClick=${() => model.loadOlder()}>Earlier replies</button>`}
              <${Composer} model=${model} label="Reply" placeholder="Reply to this entry" parent=${e.seq} id=${`reply-${e.seq}`} />
            </div>`}
          </article>
        </li>`;
      })}
    </ol>
  </div>`;
}

/** 1–5 stars: my rating (buttons) and the average. */
function Stars({ seq, mine, avg, count, onRate, small }) {
  return html`<span class=${`stars${small ? ' small' : ''}`}>
    <span class="rate" role="group" aria-label="Your rating">
      ${[1, 2, 3, 4, 5].map(
        (n) => html`<button
          type="button"
          key=${n}
          class=${mine && n <= mine ? 'star on' : 'star'}
          aria-label=${`${n} star${n > 1 ? 's' : ''}`}
          aria-pressed=${mine === n ? 'true' : 'false'}
          onClick=${() => onRate(seq, n)}
        >★</button>`,
      )}
    </span>
    <span class="avg" data-avg=${avg || 0}>${count ? `${(avg || 0).toFixed(1)} (${count})` : 'no ratings'}</span>
  </span>`;
}
