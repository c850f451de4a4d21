// The state of one open room, kept from the SDK's events: the loaded run of
// messages (a contiguous stretch from some seq to the newest), my sends not
// yet in the room (pending, held, failed), likes and stars, who is typing
// and online, "seen by" for my latest message. Views subscribe and render
// it; nothing here touches the DOM.

const PAGE = 100; // history page size (the protocol's maximum)
const TYPING_MS = 4000; // a typing push shows for this long

export class RoomModel {
  /**
   * @param {import('../sdk/parley.mjs').ParleyClient} client
   * @param {{id: string, kind: string, name: string}} room
   * @param {string} me my person id
   */
  constructor(client, room, me) {
    /** @type {import('../sdk/parley.mjs').ParleyClient} the workspace's client */
    this.client = client;
    /** @type {string} room id */
    this.id = room.id;
    /** @type {string} 'chat' or 'dialogue' */
    this.kind = room.kind;
    /** @type {string} my person id */
    this.me = me;
    /** @type {object[]} loaded messages, ascending seq, contiguous to the newest */
    this.messages = [];
    /** @type {Map<number, object>} the same by seq */
    this.bySeq = new Map();
    /** @type {boolean} older history exists below the first loaded message */
    this.hasOlder = false;
    /** @type {boolean} a page of older history is being fetched */
    this.loadingOlder = false;
    /** @type {Map<string, object>} my sends not (yet) in the room, by client_msg_id */
    this.outgoing = new Map();
    /** @type {Set<number>} seqs I like */
    this.myLikes = new Set();
    /** @type {Map<number, number>} my stars by seq */
    this.myStars = new Map();
    /** @type {number} my read watermark when the room opened */
    this.upToAtOpen = 0;
    /** @type {number} the newest seq loaded when the room opened */
    this.lastAtOpen = 0;
    /** @type {number} the highest seq I reported read */
    this.readUpTo = 0;
    /** @type {Map<string, number>} person -> until (ms) for typing indicators */
    this.typing = new Map();
    /** @type {{seq: number, count: number, of: number, seen: object[]}|null} for my latest message */
    this.seenBy = null;
    /** @type {{locked: boolean, slow_mode_s: number}|null} the last settings push */
    this.settings = null;
    /** @type {string|null} why the room was taken from me (removed push) */
    this.removed = null;
    /** @type {boolean} the first page arrived */
    this.ready = false;
    /** @type {Error|null} opening failed */
    this.error = null;
    /** @type {object[]} new messages for the live region (consumed by the view) */
    this.announcements = [];
    /** @type {number} bumped on every change (views compare it) */
    this.version = 0;
    /** @type {Set<() => void>} change listeners */
    this.listeners = new Set();
    /** @type {(() => void)[]} SDK listener removers */
    this.offs = [];
    /** @type {any} pending seen-by refresh timer */
    this.seenTimer = null;
    /** @type {any} typing expiry timer */
    this.typingTimer = null;
  }

  /** @param {() => void} fn @returns {() => void} */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** @private */
  changed() {
    this.version++;
    for (const fn of this.listeners) fn();
  }

  /** Joins the room and loads the newest page, my held messages and votes. */
  async open() {
    const c = this.client;
    const mine = (p) => p.room === this.id;
    this.offs.push(
      c.on('message', (m) => mine(m) && this.onMessage(m)),
      c.on('votes', (p) => mine(p) && this.onVotes(p)),
      c.on('delete', (p) => mine(p) && this.patch(p.target, { deleted: true, body: '' })),
      c.on('edit', (p) => mine(p) && this.patch(p.target, { body: p.body, edited: p.edited })),
      c.on('read', (p) => mine(p) && p.person !== this.me && this.refreshSeenSoon()),
      c.on('settings', (p) => mine(p) && ((this.settings = p), this.changed())),
      c.on('typing', (p) => mine(p) && this.onTyping(p)),
      c.on('presence', (p) => mine(p) && this.changed()),
      c.on('pending', (p) => mine(p) && this.onPending(p)),
      c.on('outgoing', (o) => o.room === this.id && this.onOutgoing(o)),
      c.on('removed', (p) => mine(p) && ((this.removed = p.reason), this.changed())),
      c.on('recovery', (r) => mine(r) && !r.recovered && this.reload()),
    );
    try {
      const [unread] = await Promise.all([c.unread(), this.join()]);
      const u = unread.rooms.find((r) => r.room === this.id);
      this.upToAtOpen = u ? u.up_to : 0;
      this.readUpTo = this.upToAtOpen;
      await this.reload();
      this.lastAtOpen = this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
      const [pending, votes] = await Promise.all([c.pendingMessages(this.id), c.myVotes(this.id)]);
      for (const it of pending.items) {
        if (it.sender !== this.me) continue;
        this.outgoing.set(it.client_msg_id, {
          clientMsgId: it.client_msg_id,
          body: it.body,
          parent: it.parent || undefined,
          state: 'held',
          pendingId: it.id,
          ts: it.ts,
        });
      }
      for (const l of votes.likes) this.myLikes.add(l.seq);
      for (const r of votes.ratings) this.myStars.set(r.seq, r.stars);
      this.ready = true;
      this.refreshSeenSoon(0);
    } catch (e) {
      this.error = e;
    }
    this.changed();
  }

  /** @private joins unless the client already has the room (a view opened twice). */
  async join() {
    if (this.client.rooms().includes(this.id)) return;
    await this.client.join(this.id);
  }

  /** Leaves the room and drops every listener. */
  close() {
    for (const off of this.offs) off();
    this.offs = [];
    clearTimeout(this.seenTimer);
    clearTimeout(this.typingTimer);
    this.listeners.clear();
    if (this.client.rooms().includes(this.id)) this.client.leave(this.id).catch(() => {});
  }

  /** The newest page again (on open, and when recovery could not fill a hole). */
  async reload() {
    const last = this.client.lastSeq(this.id);
    const page = await this.client.history(this.id, { before: last + 1, limit: PAGE });
    // Live messages that arrived meanwhile are above `last`: keep them.
    const live = this.messages.filter((m) => m.seq > last);
    this.messages = [];
    this.bySeq.clear();
    for (const m of page.messages) this.add(m);
    for (const m of live) this.add(m);
    this.hasOlder = page.has_more;
    this.changed();
  }

  /** Loads one page of older messages; resolves false when there is none. */
  async loadOlder() {
    if (!this.hasOlder || this.loadingOlder || !this.messages.length) return false;
    this.loadingOlder = true;
    try {
      const page = await this.client.history(this.id, { before: this.messages[0].seq, limit: PAGE });
      const older = page.messages.filter((m) => !this.bySeq.has(m.seq));
      for (const m of older) this.bySeq.set(m.seq, { ...m });
      this.messages = [...older.map((m) => this.bySeq.get(m.seq)), ...this.messages];
      this.hasOlder = page.has_more;
      return older.length > 0;
    } finally {
      this.loadingOlder = false;
      this.changed();
    }
  }

  /** Loads older pages until seq is loaded (jump to first unread). */
  async loadUntil(seq) {
    while (this.hasOlder && this.messages.length && this.messages[0].seq > seq) {
      if (!(await this.loadOlder())) break;
    }
  }

  /** @private appends a message (ascending order is the SDK's promise). */
  add(m) {
    if (this.bySeq.has(m.seq)) return;
    const msg = { ...m };
    this.bySeq.set(m.seq, msg);
    const last = this.messages[this.messages.length - 1];
    if (!last || last.seq < m.seq) this.messages.push(msg);
    else {
      this.messages.push(msg);
      this.messages.sort((a, b) => a.seq - b.seq);
    }
  }

  /** @private */
  onMessage(m) {
    this.add(m);
    if (m.sender === this.me) {
      this.outgoing.delete(m.client_msg_id);
      this.refreshSeenSoon();
    } else {
      this.announcements.push(m);
    }
    this.changed();
  }

  /** @private the aggregates of a target; the largest v wins. */
  onVotes(p) {
    const m = this.bySeq.get(p.target);
    if (!m || (m.v || 0) >= p.v) return;
    if (p.likes !== undefined) m.likes = p.likes;
    if (p.stars !== undefined) {
      m.stars = p.stars;
      m.star_avg = p.star_avg;
    }
    m.v = p.v;
    this.bySeq.set(m.seq, { ...m });
    this.messages = this.messages.map((x) => (x.seq === m.seq ? this.bySeq.get(m.seq) : x));
    this.changed();
  }

  /** @private */
  patch(seq, fields) {
    const m = this.bySeq.get(seq);
    if (!m) return;
    const n = { ...m, ...fields };
    this.bySeq.set(seq, n);
    this.messages = this.messages.map((x) => (x.seq === seq ? n : x));
    this.changed();
  }

  /** @private my send's state, from the SDK. */
  onOutgoing(o) {
    const prev = this.outgoing.get(o.clientMsgId);
    if (o.state === 'acknowledged' && o.ack && o.ack.pending !== undefined) {
      this.outgoing.set(o.clientMsgId, {
        clientMsgId: o.clientMsgId,
        body: o.body,
        parent: o.parent,
        state: 'held',
        pendingId: o.ack.pending,
        ts: o.ack.ts,
      });
    } else if (o.state === 'acknowledged') {
      // Stored: its message push shows it (it may already have).
      if (this.bySeq.has(o.ack.seq)) this.outgoing.delete(o.clientMsgId);
      else if (prev) prev.state = 'sent';
    } else {
      this.outgoing.set(o.clientMsgId, {
        clientMsgId: o.clientMsgId,
        body: o.body,
        parent: o.parent,
        state: o.state, // 'pending' or 'failed'
        error: o.error,
        ts: prev ? prev.ts : Date.now(),
      });
    }
    this.changed();
  }

  /** @private a held message of mine was decided (or a new one listed). */
  onPending(p) {
    if (p.sender !== this.me) return;
    const o = this.outgoing.get(p.client_msg_id);
    if (p.state === 'approved') {
      if (o) o.state = 'sent'; // its message push follows
      if (p.seq && this.bySeq.has(p.seq)) this.outgoing.delete(p.client_msg_id);
    } else if (p.state === 'rejected') {
      if (o) o.state = 'rejected';
    } else if (!o && p.body !== undefined) {
      this.outgoing.set(p.client_msg_id, {
        clientMsgId: p.client_msg_id,
        body: p.body,
        parent: p.parent,
        state: 'held',
        pendingId: p.id,
        ts: p.ts,
      });
    }
    this.changed();
  }

  /** Sends a message (or, with parent, a dialogue reply). */
  send(body, parent) {
    return this.client.send(this.id, body, parent ? { parent } : {});
  }

  /** Drops a failed or rejected send from the list. */
  dismiss(clientMsgId) {
    this.outgoing.delete(clientMsgId);
    this.changed();
  }

  /** Sends a failed message again (a new client_msg_id: the old one was refused). */
  retry(clientMsgId) {
    const o = this.outgoing.get(clientMsgId);
    if (!o) return;
    this.outgoing.delete(clientMsgId);
    this.send(o.body, o.parent);
  }

  /** Likes or unlikes a chat message. */
  async toggleLike(seq) {
    const liked = this.myLikes.has(seq);
    if (liked) this.myLikes.delete(seq);
    else this.myLikes.add(seq);
    this.changed();
    try {
      const r = liked ? await this.client.unlike(this.id, seq) : await this.client.like(this.id, seq);
      if (r.v !== undefined) this.onVotes({ target: seq, likes: r.likes, v: r.v });
    } catch (e) {
      if (liked) this.myLikes.add(seq);
      else this.myLikes.delete(seq);
      this.changed();
      throw e;
    }
  }

  /** Rates a dialogue entry or reply with 1 to 5 stars. */
  async rate(seq, stars) {
    const before = this.myStars.get(seq);
    this.myStars.set(seq, stars);
    this.changed();
    try {
      const r = await this.client.rate(this.id, seq, stars);
      if (r.v !== undefined) this.onVotes({ target: seq, stars: r.stars, star_avg: r.star_avg, v: r.v });
    } catch (e) {
      if (before === undefined) this.myStars.delete(seq);
      else this.myStars.set(seq, before);
      this.changed();
      throw e;
    }
  }

  /** Reports everything up to seq read (only forward, only when it moves). */
  markRead(seq) {
    if (seq <= this.readUpTo) return;
    this.readUpTo = seq;
    this.client.read(this.id, seq).catch(() => {});
  }

  /** @private */
  onTyping(p) {
    if (p.person === this.me) return;
    this.typing.set(p.person, Date.now() + TYPING_MS);
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.expireTyping(), TYPING_MS + 50);
    this.changed();
  }

  /** @private */
  expireTyping() {
    const now = Date.now();
    for (const [k, until] of this.typing) if (until <= now) this.typing.delete(k);
    if (this.typing.size) this.typingTimer = setTimeout(() => this.expireTyping(), 500);
    this.changed();
  }

  /** People typing now (not me). */
  typingNow() {
    const now = Date.now();
    return [...this.typing].filter(([, until]) => until > now).map(([p]) => p);
  }

  /** Presence from the SDK: {count, online} or null. */
  presence() {
    return this.client.presence(this.id);
  }

  /** @private "seen by" of my latest message, refreshed after read pushes (debounced). */
  refreshSeenSoon(ms = 250) {
    clearTimeout(this.seenTimer);
    this.seenTimer = setTimeout(() => this.refreshSeen(), ms);
  }

  /** @private */
  async refreshSeen() {
    let latest = null;
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i];
      if (m.sender === this.me && !m.deleted) {
        latest = m;
        break;
      }
    }
    if (!latest) return;
    try {
      const r = await this.client.seenBy(this.id, latest.seq);
      this.seenBy = { seq: r.seq, count: r.count, of: r.of, seen: r.seen };
      this.changed();
    } catch {
      /* best effort: shown again at the next read push */
    }
  }
}
