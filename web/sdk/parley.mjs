/**
 * Parley JavaScript SDK: one dependency-free ES module for browsers and Node
 * (avatar bots). It speaks the wire protocol of protocol/PROTOCOL.md
 * (subprotocol `parley.v1`) and adds what every client would otherwise write
 * itself:
 *
 * - reconnection with jittered exponential backoff, rotating over the listed
 *   gateways (they are stateless: any of them will do);
 * - recovery: every joined room is joined again with `since` = the last seq
 *   the application was given, and sequenced pushes are checked so the
 *   application sees each seq once, in order, with no silent gap;
 * - sends with an automatic `client_msg_id`, kept until the server
 *   acknowledges them and re-sent with the same id after a reconnect or an
 *   `unavailable`/`busy` answer (the server deduplicates), so a message is
 *   never silently lost: it ends `acknowledged` or `failed` with a code;
 * - every error of PROTOCOL.md section 5 as a {@link ParleyError} whose
 *   `code` is the stable wire code.
 *
 * The WebSocket constructor is passed in (the browser's global `WebSocket`,
 * or the `ws` package in Node 20), so this file imports nothing.
 *
 * @module parley
 */

/** The subprotocol the gateway requires. */
export const PROTOCOL = 'parley.v1';

/**
 * The error codes of PROTOCOL.md section 5, in the order of its table (a
 * test compares this list with the document).
 * @typedef {'bad_json'|'bad_request'|'unknown_op'|'auth_required'|'auth_failed'|
 *   'already_authenticated'|'room_not_found'|'forbidden'|'not_joined'|'already_joined'|
 *   'too_many_rooms'|'body_too_long'|'unavailable'|'busy'|'internal'|'no_such_message'|
 *   'likes_not_allowed'|'ratings_not_allowed'|'stars_out_of_range'|'bad_parent'|
 *   'guideline_violation'|'muted'|'room_locked'|'slow_mode'|'edit_window_closed'|
 *   'no_such_pending'|'room_archived'} ServerErrorCode
 */
/** @type {readonly ServerErrorCode[]} */
export const SERVER_ERROR_CODES = Object.freeze([
  'bad_json', 'bad_request', 'unknown_op', 'auth_required', 'auth_failed',
  'already_authenticated', 'room_not_found', 'forbidden', 'not_joined', 'already_joined',
  'too_many_rooms', 'body_too_long', 'unavailable', 'busy', 'internal', 'no_such_message',
  'likes_not_allowed', 'ratings_not_allowed', 'stars_out_of_range', 'bad_parent',
  'guideline_violation', 'muted', 'room_locked', 'slow_mode', 'edit_window_closed',
  'no_such_pending', 'room_archived',
]);

/**
 * Codes the SDK itself produces: `disconnected` (a command that is not safe
 * to repeat was in flight when the connection was lost: it may or may not
 * have taken effect), `timeout` (no answer within `requestTimeoutMs`),
 * `closed` (the client was closed, or the server ended the session for good:
 * access revoked, workspace deleted).
 * @typedef {'disconnected'|'timeout'|'closed'} ClientErrorCode
 */
/** @type {readonly ClientErrorCode[]} */
export const CLIENT_ERROR_CODES = Object.freeze(['disconnected', 'timeout', 'closed']);

/** @typedef {ServerErrorCode|ClientErrorCode} ErrorCode */

/* Worth trying again as they are (PROTOCOL.md: "yes" in the retry column). */
const RETRYABLE = new Set(['unavailable', 'busy', 'disconnected', 'timeout']);

/** An error with a stable code: a server refusal or one of the SDK's own. */
export class ParleyError extends Error {
  /**
   * @param {ErrorCode} code the stable code (match on this, not on message)
   * @param {string} [message] for humans; may change
   * @param {{op?: string, room?: string, closeCode?: number, retryAfterMs?: number|null}} [details]
   */
  constructor(code, message, details = {}) {
    super(message || code);
    this.name = 'ParleyError';
    /** @type {ErrorCode} the stable code */
    this.code = code;
    /** @type {string|null} the op that was refused, when there was one */
    this.op = details.op ?? null;
    /** @type {string|null} the room concerned, when known */
    this.room = details.room ?? null;
    /** @type {number|null} the WebSocket close code, for `closed` */
    this.closeCode = details.closeCode ?? null;
    /** @type {boolean} the same command may succeed if repeated later */
    this.retryable = RETRYABLE.has(code);
    /** @type {number|null} the server's `retry_after_ms` hint (on `busy` or
     * `unavailable`): do not try again sooner */
    this.retryAfterMs = details.retryAfterMs ?? null;
  }
}

/* A server's hint is honoured up to this long: a bogus value must not park
 * the client for good. */
const MAX_RETRY_AFTER_MS = 60000;

/**
 * The server's `retry_after_ms` of an error object from the wire, as a
 * number of ms (0 when absent or not a sane number).
 * @param {any} error the `error` member of a reply
 * @returns {number}
 */
export function retryAfterOf(error) {
  const v = error && error.retry_after_ms;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return 0;
  return Math.min(Math.ceil(v), MAX_RETRY_AFTER_MS);
}

/** A ParleyError from a reply's `error` object (code, message, hint). */
function wireError(error, details = {}) {
  const e = error || {};
  const hint = retryAfterOf(e);
  return new ParleyError(e.code || 'internal', e.message, { ...details, retryAfterMs: hint || null });
}

/**
 * The delay before reconnection attempt `attempt` (0 first): "full jitter",
 * a uniformly random time up to min(maxMs, initialMs * 2^attempt), so that
 * clients cut off together do not all come back in the same instant. When
 * the server said how long to wait (`retry_after_ms` on `busy`), the delay
 * is that plus the jitter: at least the hint, and the clients it refused
 * together still spread out instead of all coming back when it ends.
 * @param {number} attempt
 * @param {{initialMs: number, maxMs: number}} backoff
 * @param {() => number} [random] in [0, 1)
 * @param {number} [floorMs] the server's hint (0: none)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, backoff, random = Math.random, floorMs = 0) {
  const cap = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return floorMs + Math.floor(random() * cap);
}

/** A fresh client_msg_id: a random UUID (36 bytes, the limit is 64). */
export function newClientMsgId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const utf8 = new TextEncoder();
const utf8Length = (s) => utf8.encode(s).length;

/* Pushes that take a seq in the room's log: delivered once, in order. */
const SEQUENCED = new Set(['message', 'votes', 'read', 'delete', 'edit', 'settings']);
/* Commands that may be sent again after a lost connection without changing
 * the outcome (PROTOCOL.md: reads and votes are idempotent; queries are
 * reads). Others in flight at a loss fail with `disconnected`. */
const IDEMPOTENT = new Set([
  'join', 'history', 'ping', 'read', 'seen', 'like', 'unlike', 'rate', 'unrate', 'unread',
  'seen_by', 'seen_entries', 'entries', 'my_votes', 'pending',
]);

/**
 * @typedef {object} ClientOptions
 * @property {string|string[]} urls gateway WebSocket URLs; reconnections
 *   rotate over them
 * @property {string} token access token (session token, or an avatar's API token)
 * @property {string} [workspace] workspace id, for a token valid in several
 * @property {any} [WebSocket] WebSocket constructor (default: globalThis.WebSocket)
 * @property {{initialMs?: number, maxMs?: number}} [backoff] reconnection and
 *   send-retry backoff (default 250 ms doubling up to 10 s, full jitter)
 * @property {number} [requestTimeoutMs] how long a command other than `send`
 *   may wait for its answer, offline time included (default 30000)
 * @property {number} [connectTimeoutMs] how long one connection attempt may
 *   take up to an authenticated session (default 10000)
 * @property {number} [pingIntervalMs] a quiet connection is pinged this often
 *   (default 20000); one silent for 2.5 times as long is taken for dead
 * @property {number} [maxSendAttempts] `unavailable`/`busy` answers to one
 *   send before it fails with that code (default 10; lost connections do not count)
 * @property {() => number} [random] random source in [0, 1) for the jitter
 */

/**
 * @typedef {object} Session
 * @property {string} person
 * @property {string} workspace
 * @property {string} role owner, admin, keyuser, support, member or avatar
 */

/**
 * A message push (PROTOCOL.md section 4), also the shape of history items
 * (without `push` and `room`).
 * @typedef {object} MessagePush
 * @property {'message'} push
 * @property {string} room
 * @property {number} seq
 * @property {string} sender person id
 * @property {string} client_msg_id
 * @property {string} body
 * @property {number} ts ms since the epoch, at commit
 * @property {boolean} [avatar] the sender is an avatar (bot)
 * @property {'entry'|'reply'} [kind] dialogue rooms
 * @property {number} [parent] a reply's entry
 * @property {boolean} [deleted]
 * @property {number} [edited]
 */

/**
 * What `'recovery'` listeners get after a room was joined with `since`.
 * @typedef {object} Recovery
 * @property {string} room
 * @property {number} since the seq the join asked to continue from
 * @property {boolean} recovered false: seqs after `since` up to `lastSeq`
 *   were not replayed (too far behind); page them with `history`
 * @property {number} lastSeq live messages follow this seq
 */

/**
 * @typedef {object} SendAck the server's `ok` for a send
 * @property {string} room
 * @property {number} [seq] absent when a guideline held or shadowed it
 * @property {number} ts
 * @property {boolean} duplicate this client_msg_id was stored before (a retry)
 * @property {number} [pending] id of the held or shadowed message
 * @property {'held'|'shadow'} [state]
 */

/**
 * One message the application sent. Its `state` moves from `pending` to
 * `acknowledged` (stored: `seq`, or `ack.pending` when a guideline holds it)
 * or to `failed` (`error.code` says why); each change is also emitted as an
 * `'outgoing'` event.
 */
export class Outgoing {
  /** @param {string} room @param {string} body @param {string} clientMsgId @param {number|undefined} parent */
  constructor(room, body, clientMsgId, parent) {
    /** @type {string} the room */
    this.room = room;
    /** @type {string} the text as sent (the stored one may be masked) */
    this.body = body;
    /** @type {string} the idempotency key, the same on every retry */
    this.clientMsgId = clientMsgId;
    /** @type {number|undefined} a dialogue reply's entry seq */
    this.parent = parent;
    /** @type {'pending'|'acknowledged'|'failed'} */
    this.state = 'pending';
    /** @type {number} times it was written to a socket */
    this.attempts = 0;
    /** @type {ParleyError|null} the last retryable refusal while pending, or why it failed */
    this.error = null;
    /** @type {SendAck|null} the server's answer once acknowledged */
    this.ack = null;
    /** @type {Promise<SendAck>} settles with the outcome (handled: ignoring it is safe) */
    this.done = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
    this.done.catch(() => {});
  }

  /** @returns {number|null} the message's seq once acknowledged */
  get seq() {
    return this.ack && typeof this.ack.seq === 'number' ? this.ack.seq : null;
  }
}

/**
 * A client of one Parley workspace over one WebSocket at a time.
 *
 * Events (`client.on(name, fn)`): `state`, `session`, `hello`, `outgoing`,
 * `recovery`, `error` (failures no promise reports: a room lost on
 * reconnection, a fatal close), `push` (every push delivered), and each push
 * by its name: `message`, `votes`, `read`, `delete`, `edit`, `settings`
 * (sequenced: once each, in seq order), `member`, `presence`, `typing`,
 * `pending`, `flagged`, `removed`.
 */
export class ParleyClient {
  /** @param {ClientOptions} options */
  constructor(options) {
    const o = options || /** @type {any} */ ({});
    const urls = Array.isArray(o.urls) ? o.urls : [o.urls];
    if (!urls.length || urls.some((u) => typeof u !== 'string' || !u)) {
      throw new TypeError('ParleyClient: urls must name at least one gateway');
    }
    if (typeof o.token !== 'string' || !o.token) throw new TypeError('ParleyClient: token required');
    const WS = o.WebSocket || globalThis.WebSocket;
    if (typeof WS !== 'function') {
      throw new TypeError('ParleyClient: no WebSocket constructor (in Node, pass the ws package)');
    }
    /** @private gateway URLs, tried in turn */
    this._urls = urls.slice();
    /** @private index of the next URL to try */
    this._nextUrl = 0;
    /** @private */
    this._token = o.token;
    /** @private */
    this._workspace = o.workspace;
    /** @private */
    this._WS = WS;
    /** @private */
    this._backoff = { initialMs: 250, maxMs: 10000, ...(o.backoff || {}) };
    /** @private */
    this._requestTimeoutMs = o.requestTimeoutMs ?? 30000;
    /** @private */
    this._connectTimeoutMs = o.connectTimeoutMs ?? 10000;
    /** @private */
    this._pingIntervalMs = o.pingIntervalMs ?? 20000;
    /** @private */
    this._maxSendAttempts = o.maxSendAttempts ?? 10;
    /** @private */
    this._random = o.random || Math.random;
    /** @private listeners by event name */
    this._listeners = new Map();
    /** @private the current connection record, or null between connections */
    this._conn = null;
    /** @private connection records are numbered so late events of old sockets are ignored */
    this._connSeq = 0;
    /** @private consecutive failed connections (drives the backoff) */
    this._attempt = 0;
    /** @private pending reconnection timer */
    this._reconnectTimer = null;
    /** @private no new connection before this time (the server's busy hint) */
    this._notBefore = 0;
    /** @private timer for requests waiting for their retry time */
    this._pumpTimer = null;
    /** @private last command id used: fresh for every command, never reused */
    this._lastId = 0;
    /** @private requests not yet answered, in the order they were made */
    this._queue = new Set();
    /** @private joined (or joining) rooms by id */
    this._rooms = new Map();
    /** @private connect()'s promise, settled at the first session */
    this._ready = null;
    /** @type {'idle'|'connecting'|'open'|'reconnecting'|'closed'} */
    this.state = 'idle';
    /** @type {Session|null} the authenticated identity */
    this.session = null;
    /** @type {any} the last `hello` push (limits: max_frame, max_body) */
    this.hello = null;
    /** Counters for tests and diagnostics. */
    this.stats = {
      /** connections that reached an authenticated session */
      sessions: 0,
      /** sequenced pushes dropped because their seq was already delivered */
      duplicatesDropped: 0,
      /** sequenced pushes that skipped a seq (then the client reconnects to recover) */
      gaps: 0,
    };
  }

  /* ---- events ----------------------------------------------------------- */

  /**
   * @param {string} event
   * @param {(value: any) => void} fn
   * @returns {() => void} removes the listener
   */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  /** @param {string} event @param {(value: any) => void} fn */
  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  /** @private A throwing listener must not break the client's state: rethrow later. */
  _emit(event, value) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (e) {
        setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }

  /** @private */
  _setState(state, detail = {}) {
    // Every new wait is reported (a busy answer while reconnecting), so a
    // countdown shows the pause the client is really in.
    if (this.state === state && detail.retryInMs === undefined) return;
    const previous = this.state;
    this.state = state;
    this._emit('state', { state, previous, ...detail });
  }

  /* ---- connection ------------------------------------------------------- */

  /**
   * Opens the connection and authenticates; resolves with the session.
   * Network failures are retried with backoff (watch `state`); it rejects
   * only when the token is refused or the client is closed.
   * @returns {Promise<Session>}
   */
  connect() {
    if (this.state === 'closed') return Promise.reject(new ParleyError('closed', 'client closed'));
    if (this._ready) return this._ready.promise;
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this._ready = { promise, resolve, reject, settled: false };
    this._setState('connecting');
    this._open();
    return promise;
  }

  /**
   * Closes the connection for good. Sends not yet acknowledged fail with
   * `closed` (they may still have been stored: retrying them later with
   * the same `clientMsgId` is safe), and so do waiting commands.
   */
  close() {
    if (this.state === 'closed') return;
    this._shutdown(new ParleyError('closed', 'client closed'));
  }

  /**
   * Drops the current connection and reconnects at once (e.g. when the
   * browser reports the network is back). Nothing is lost: the usual
   * recovery applies.
   */
  reconnect() {
    if (this.state === 'closed' || this.state === 'idle') return;
    this._attempt = 0;
    if (this._conn) this._lose(this._conn, { code: 4000, reason: 'client reconnect' }, true);
    else if (this._reconnectTimer) {
      // At once, unless the server asked for a pause: a network coming back
      // does not make a busy gateway less busy.
      const wait = this._notBefore - Date.now();
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
      if (wait > 0) this._reconnectTimer = setTimeout(() => this._open(), wait);
      else this._open();
    }
  }

  /** @private Starts one connection attempt to the next gateway. */
  _open() {
    this._reconnectTimer = null;
    const url = this._urls[this._nextUrl % this._urls.length];
    this._nextUrl = (this._nextUrl + 1) % this._urls.length;
    const c = {
      id: ++this._connSeq, // this record's number
      url, // the gateway
      ws: null, // the socket
      authed: false, // auth answered ok
      inflight: new Map(), // command id -> request written on this socket
      lastRx: Date.now(), // when something last arrived (liveness)
      timer: null, // connect deadline, then the liveness check
      pinging: false, // a keepalive ping is unanswered
      dead: false, // lost: ignore anything it still reports
    };
    this._conn = c;
    let ws;
    try {
      ws = new this._WS(url, PROTOCOL);
    } catch (e) {
      this._lose(c, { code: 1006, reason: String(e && e.message) });
      return;
    }
    c.ws = ws;
    ws.onopen = () => !c.dead && this._onOpen(c);
    ws.onmessage = (ev) => !c.dead && this._onData(c, ev.data);
    ws.onerror = () => {}; // the close event that follows decides
    ws.onclose = (ev) => !c.dead && this._lose(c, { code: ev.code, reason: ev.reason || '' });
    c.timer = setTimeout(() => {
      if (!c.dead && !c.authed) this._lose(c, { code: 4001, reason: 'connect timeout' }, true);
    }, this._connectTimeoutMs);
  }

  /** @private */
  _onOpen(c) {
    const fields = { token: this._token };
    if (this._workspace) fields.workspace = this._workspace;
    const req = this._newReq('auth', fields, { control: true });
    req.onReply = (msg) => this._onAuth(c, msg);
    this._transmit(c, req);
  }

  /** @private */
  _onAuth(c, msg) {
    if (msg.error) {
      const err = wireError(msg.error, { op: 'auth' });
      if (err.retryable) this._lose(c, { code: 4002, reason: err.message, retryAfterMs: err.retryAfterMs || 0 }, true);
      else this._shutdown(err); // a refused token stays refused
      return;
    }
    c.authed = true;
    this._attempt = 0;
    this.stats.sessions++;
    clearTimeout(c.timer);
    c.timer = setInterval(() => this._checkAlive(c), Math.max(50, this._pingIntervalMs / 2));
    this.session = { person: msg.ok.person, workspace: msg.ok.workspace, role: msg.ok.role };
    this._setState('open', { url: c.url });
    this._emit('session', this.session);
    if (this._ready && !this._ready.settled) {
      this._ready.settled = true;
      this._ready.resolve(this.session);
    }
    // Rooms joined before the loss continue from the last seq delivered.
    for (const r of this._rooms.values()) {
      if (!r.joinReq) this._rejoin(r);
    }
    this._pump();
  }

  /** @private Pings a quiet connection; drops one that stays silent. */
  _checkAlive(c) {
    if (c.dead) return;
    const quiet = Date.now() - c.lastRx;
    if (quiet > this._pingIntervalMs * 2.5) {
      this._lose(c, { code: 4003, reason: 'connection silent' }, true);
    } else if (quiet >= this._pingIntervalMs && !c.pinging) {
      c.pinging = true;
      const req = this._newReq('ping', {}, { control: true });
      req.onReply = () => (c.pinging = false);
      this._transmit(c, req);
    }
  }

  /**
   * @private The connection is gone (closed by either side, or judged dead).
   * Requests written on it go back to the queue when they are safe to repeat;
   * rooms wait to be joined again with `since`.
   */
  _lose(c, info, closeSocket = false) {
    if (c.dead) return;
    c.dead = true;
    clearTimeout(c.timer);
    clearInterval(c.timer);
    if (this._conn === c) this._conn = null;
    if (closeSocket && c.ws) {
      try {
        c.ws.close(4000, 'reconnect');
      } catch {
        /* already closing */
      }
    }
    for (const req of c.inflight.values()) {
      req.sentOn = 0;
      if (req.op === 'leave') this._settle(req, null, { room: req.fields.room }); // left with the socket
      else if (!req.isSend && !IDEMPOTENT.has(req.op)) {
        this._settle(req, new ParleyError('disconnected', 'connection lost before the answer', { op: req.op }));
      }
    }
    c.inflight.clear();
    // Rejoins are made afresh for the next connection (_onAuth).
    for (const req of this._queue) if (req.rejoin) this._queue.delete(req);
    for (const r of this._rooms.values()) {
      r.joinedOn = 0;
      r.presence = null;
    }
    if (this.state === 'closed') return;
    // The server ended this session for good (PROTOCOL.md section 6).
    if (info.code === 1008 && /revoked|deleted/.test(info.reason)) {
      this._shutdown(new ParleyError('closed', info.reason, { closeCode: info.code }));
      return;
    }
    const hint = info.retryAfterMs || 0;
    const delay = backoffDelay(this._attempt++, this._backoff, this._random, hint);
    this._notBefore = Date.now() + hint;
    this._setState(this.state === 'connecting' ? 'connecting' : 'reconnecting', {
      closeCode: info.code,
      reason: info.reason,
      retryInMs: delay,
    });
    this._reconnectTimer = setTimeout(() => this._open(), delay);
  }

  /** @private Ends everything: no reconnection; pending work fails with err. */
  _shutdown(err) {
    this._setState('closed', { error: err });
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._pumpTimer);
    if (this._conn) {
      const c = this._conn;
      c.dead = true;
      clearTimeout(c.timer);
      clearInterval(c.timer);
      this._conn = null;
      try {
        c.ws && c.ws.close(1000, 'bye');
      } catch {
        /* already closed */
      }
    }
    for (const req of [...this._queue]) this._settle(req, err);
    this._rooms.clear();
    if (this._ready && !this._ready.settled) {
      this._ready.settled = true;
      this._ready.reject(err);
    }
    if (err.code !== 'closed' || err.closeCode) this._emit('error', err);
  }

  /* ---- frames ----------------------------------------------------------- */

  /** @private One server frame: an object or an array of them, in order. */
  _onData(c, data) {
    c.lastRx = Date.now();
    const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
    let v;
    try {
      v = JSON.parse(text);
    } catch {
      this._emit('error', new ParleyError('bad_json', 'the server sent a frame that is not JSON'));
      return;
    }
    for (const item of Array.isArray(v) ? v : [v]) {
      if (c.dead) return; // a push may have made us drop this connection
      if (!item || typeof item !== 'object') continue;
      if (typeof item.push === 'string') this._onPush(c, item);
      else if ('id' in item) this._onReply(c, item);
    }
  }

  /** @private */
  _onReply(c, msg) {
    if (msg.id === null) {
      // A command the server could not even read the id of: a client bug.
      const e = msg.error || {};
      this._emit('error', new ParleyError(e.code || 'bad_request', e.message));
      return;
    }
    const req = c.inflight.get(msg.id);
    if (!req) return; // timed out meanwhile
    c.inflight.delete(msg.id);
    req.sentOn = 0;
    if (req.onReply) req.onReply(msg);
    else if (msg.error) this._settle(req, wireError(msg.error, { op: req.op, room: req.fields.room }));
    else this._settle(req, null, msg.ok);
  }

  /** @private */
  _onPush(c, p) {
    const r = typeof p.room === 'string' ? this._rooms.get(p.room) : undefined;
    if (SEQUENCED.has(p.push) && typeof p.seq === 'number') {
      if (!r || r.joinedOn !== c.id) return; // not (or no longer) joined here
      if (p.seq <= r.lastSeq) {
        this.stats.duplicatesDropped++;
        return;
      }
      if (p.seq !== r.lastSeq + 1) {
        // Never expected (the server promises no gap); recover rather than
        // show a hole: a new connection joins with since = the last seq.
        this.stats.gaps++;
        this._lose(c, { code: 4004, reason: `gap in ${p.room}: ${r.lastSeq} then ${p.seq}` }, true);
        return;
      }
      r.lastSeq = p.seq;
    } else if (p.push === 'hello') {
      this.hello = p;
    } else if (p.push === 'presence' && r) {
      r.presence = applyPresence(r.presence, p);
    } else if (p.push === 'removed' && r) {
      this._dropRoom(r, new ParleyError('not_joined', 'removed from the room', { room: r.room }));
    }
    this._emit(p.push, p);
    this._emit('push', p);
  }

  /* ---- requests --------------------------------------------------------- */

  /** @private */
  _newReq(op, fields, opts = {}) {
    return {
      op, // the command name
      fields, // its fields, without id and op
      control: !!opts.control, // does not wait for its room to be joined
      isSend: !!opts.isSend, // a send: lives until acknowledged or failed
      room: opts.room ?? null, // a joined room it waits for
      sentOn: 0, // connection id it is in flight on (0: none)
      notBefore: 0, // not to be written before this time (retry backoff)
      timer: null, // its deadline
      done: false, // settled
      resolve: null, // promise callbacks, or null for internal requests
      reject: null,
      onReply: null, // custom reply handler
      outgoing: null, // a send's Outgoing
      refusals: 0, // a send's unavailable/busy answers so far
      rejoin: false, // the SDK's own join after a reconnection
    };
  }

  /**
   * @private Queues a command; resolves with its `ok` object or rejects with
   * a ParleyError. Commands naming a joined room wait until the room is
   * joined on the current connection (after a reconnection).
   */
  _request(op, fields, { control = false } = {}) {
    if (this.state === 'closed') return Promise.reject(new ParleyError('closed', 'client closed', { op }));
    return new Promise((resolve, reject) => {
      const room = typeof fields.room === 'string' ? fields.room : null;
      const req = this._newReq(op, fields, { control, room });
      req.resolve = resolve;
      req.reject = reject;
      req.timer = setTimeout(
        () => this._settle(req, new ParleyError('timeout', `no answer to ${op} in time`, { op })),
        this._requestTimeoutMs,
      );
      this._queue.add(req);
      this._pump();
    });
  }

  /** @private Finishes a request: err (ParleyError) or its ok value. */
  _settle(req, err, ok) {
    if (req.done) return;
    req.done = true;
    clearTimeout(req.timer);
    this._queue.delete(req);
    if (req.sentOn && this._conn) this._conn.inflight.forEach((v, k) => v === req && this._conn.inflight.delete(k));
    if (req.outgoing) this._finishOutgoing(req.outgoing, err, ok);
    else if (err) req.reject && req.reject(err);
    else req.resolve && req.resolve(ok);
  }

  /** @private Writes every queued request that may go now, in order. */
  _pump() {
    const c = this._conn;
    if (!c || !c.authed || c.dead) return;
    const now = Date.now();
    let wake = Infinity;
    for (const req of this._queue) {
      if (req.sentOn) continue;
      if (req.notBefore > now) {
        wake = Math.min(wake, req.notBefore);
        continue;
      }
      if (!req.control && req.room) {
        const r = this._rooms.get(req.room);
        if (r && r.joinedOn !== c.id) continue; // written once the room is joined again
      }
      this._transmit(c, req);
      if (c.dead) return;
    }
    if (wake !== Infinity) {
      clearTimeout(this._pumpTimer);
      this._pumpTimer = setTimeout(() => this._pump(), wake - now);
    }
  }

  /** @private */
  _transmit(c, req) {
    const id = ++this._lastId;
    const text = JSON.stringify({ id, op: req.op, ...req.fields });
    const maxFrame = (this.hello && this.hello.max_frame) || 65536;
    if (utf8Length(text) > maxFrame) {
      // The server would close the connection (1009); refuse it here instead.
      this._settle(req, new ParleyError('bad_request', `command over max_frame (${maxFrame} bytes)`, { op: req.op }));
      return;
    }
    req.sentOn = c.id;
    c.inflight.set(id, req);
    if (req.outgoing) req.outgoing.attempts++;
    try {
      c.ws.send(text);
    } catch {
      this._lose(c, { code: 1006, reason: 'send failed' }, true);
    }
  }

  /* ---- rooms ------------------------------------------------------------ */

  /**
   * Joins a room. With `since` (the last seq the application has), the
   * server replays what came after it (`recovered: true`) or says it is too
   * far behind (`recovered: false`: page `history`). After a reconnection
   * the SDK joins again by itself with `since` = the last seq delivered.
   * @param {string} room
   * @param {{since?: number}} [opts]
   * @returns {Promise<{room: string, lastSeq: number, recovered?: boolean}>}
   */
  join(room, opts = {}) {
    if (this.state === 'closed') return Promise.reject(new ParleyError('closed', 'client closed', { op: 'join', room }));
    const existing = this._rooms.get(room);
    if (existing) {
      if (existing.joinReq) return existing.joinPromise;
      return Promise.reject(new ParleyError('already_joined', 'already joined', { op: 'join', room }));
    }
    const r = {
      room, // its id
      lastSeq: 0, // the last seq delivered to the application
      joinedOn: 0, // connection id it is joined on (0: not yet / lost)
      joinReq: null, // the application's join, while unanswered
      joinPromise: null, // its promise
      presence: null, // {count, online: Map|null} from presence pushes
    };
    this._rooms.set(room, r);
    const since = opts.since;
    r.joinPromise = new Promise((resolve, reject) => {
      const fields = { room };
      if (since !== undefined) fields.since = since;
      const req = this._newReq('join', fields, { control: true, room });
      req.resolve = resolve;
      req.reject = reject;
      req.onReply = (msg) => {
        r.joinReq = null;
        if (msg.error) {
          const err = wireError(msg.error, { op: 'join', room });
          this._dropRoom(r, err, false);
          this._settle(req, err);
          return;
        }
        const res = this._joined(r, msg.ok, since);
        this._settle(req, null, res);
      };
      req.timer = setTimeout(() => {
        r.joinReq = null;
        const err = new ParleyError('timeout', 'no answer to join in time', { op: 'join', room });
        this._dropRoom(r, err, false);
        this._settle(req, err);
      }, this._requestTimeoutMs);
      r.joinReq = req;
      this._queue.add(req);
      this._pump();
    });
    return r.joinPromise;
  }

  /** @private A join answered ok (the application's or a rejoin). */
  _joined(r, ok, since) {
    if (this._rooms.get(r.room) !== r || !this._conn) return { room: r.room, lastSeq: ok.last_seq };
    r.joinedOn = this._conn.id;
    const res = { room: r.room, lastSeq: ok.last_seq };
    if (since !== undefined) {
      res.recovered = ok.recovered;
      // Replayed pushes follow from since + 1; otherwise live from last_seq + 1.
      r.lastSeq = ok.recovered ? since : ok.last_seq;
      this._emit('recovery', { room: r.room, since, recovered: ok.recovered, lastSeq: ok.last_seq });
    } else {
      r.lastSeq = ok.last_seq;
    }
    this._pump();
    return res;
  }

  /** @private After a reconnection: join again from the last seq delivered. */
  _rejoin(r) {
    const since = r.lastSeq;
    const req = this._newReq('join', { room: r.room, since }, { control: true, room: r.room });
    req.rejoin = true;
    req.onReply = (msg) => {
      this._queue.delete(req);
      if (!msg.error) {
        this._joined(r, msg.ok, since);
        return;
      }
      const err = wireError(msg.error, { op: 'join', room: r.room });
      if (err.retryable) {
        // Storage is away or the gateway busy for a moment: try this room
        // again later, not before the server's hint.
        const again = this._newReq('join', req.fields, { control: true, room: r.room });
        again.onReply = req.onReply;
        again.rejoin = true;
        again.notBefore = Date.now() + backoffDelay(2, this._backoff, this._random, err.retryAfterMs || 0);
        this._queue.add(again);
        this._pump();
      } else {
        this._dropRoom(r, err);
      }
    };
    this._queue.add(req);
  }

  /**
   * @private The room is no longer joined (refused on rejoin, removed, or
   * left): its sends not yet written fail with err.
   */
  _dropRoom(r, err, report = true) {
    if (this._rooms.get(r.room) !== r) return;
    this._rooms.delete(r.room);
    // Commands written on the current connection get the server's answer.
    for (const req of [...this._queue]) {
      if (req.room === r.room && req !== r.joinReq && !req.sentOn && (req.isSend || !req.control)) {
        this._settle(req, err);
      }
    }
    if (report) this._emit('error', err);
  }

  /**
   * Leaves a room: no more pushes from it; its sends not yet written fail
   * with `not_joined` (those already written get the server's answer).
   * @param {string} room
   * @returns {Promise<{room: string}>}
   */
  leave(room) {
    const r = this._rooms.get(room);
    if (!r) return Promise.reject(new ParleyError('not_joined', 'not joined', { op: 'leave', room }));
    const joinReq = r.joinReq;
    const wasJoined = !!(this._conn && r.joinedOn === this._conn.id) || !!(joinReq && joinReq.sentOn);
    this._dropRoom(r, new ParleyError('not_joined', 'left the room', { op: 'send', room }), false);
    if (joinReq && !joinReq.sentOn) {
      // Never sent: it will not be.
      r.joinReq = null;
      this._settle(joinReq, new ParleyError('not_joined', 'left before the join was sent', { op: 'join', room }));
    }
    if (!wasJoined) return Promise.resolve({ room });
    return this._request('leave', { room }, { control: true });
  }

  /** @returns {string[]} the rooms joined (or being joined) */
  rooms() {
    return [...this._rooms.keys()];
  }

  /**
   * @param {string} room
   * @returns {number|null} the last seq delivered to the application
   */
  lastSeq(room) {
    const r = this._rooms.get(room);
    return r ? r.lastSeq : null;
  }

  /**
   * Who is online in a joined room, from the presence pushes.
   * @param {string} room
   * @returns {{count: number, online: {person: string, avatar: boolean}[]|null}|null}
   *   online is null in rooms too big for lists; null before the first push
   */
  presence(room) {
    const p = this._rooms.get(room)?.presence;
    if (!p) return null;
    return { count: p.count, online: p.online ? [...p.online.values()] : null };
  }

  /* ---- sending ---------------------------------------------------------- */

  /**
   * Sends a message (in a dialogue room: an entry, or with `parent` a reply).
   * Returns at once; the Outgoing's state and `'outgoing'` events tell how it
   * goes. Sends made while disconnected wait and go out after the room is
   * joined again; sends whose answer was lost go out again with the same
   * `clientMsgId` (the server stores them once).
   * @param {string} room a room joined with join()
   * @param {string} body 1 to max_body bytes of UTF-8
   * @param {{parent?: number, clientMsgId?: string}} [opts]
   * @returns {Outgoing}
   */
  send(room, body, opts = {}) {
    const out = new Outgoing(room, body, opts.clientMsgId || newClientMsgId(), opts.parent);
    const bad = (code, message) => {
      this._finishOutgoing(out, new ParleyError(code, message, { op: 'send', room }));
      return out;
    };
    if (this.state === 'closed') return bad('closed', 'client closed');
    if (typeof body !== 'string' || body.length === 0) return bad('bad_request', 'body: required');
    const maxBody = (this.hello && this.hello.max_body) || 4096;
    if (utf8Length(body) > maxBody) return bad('body_too_long', `body: over ${maxBody} bytes`);
    const cmidLen = utf8Length(out.clientMsgId);
    if (cmidLen < 1 || cmidLen > 64) return bad('bad_request', 'client_msg_id: 1 to 64 bytes');
    if (!this._rooms.has(room)) return bad('not_joined', 'join the room first');
    const fields = { room, client_msg_id: out.clientMsgId, body };
    if (opts.parent !== undefined) fields.parent = opts.parent;
    const req = this._newReq('send', fields, { isSend: true, room });
    req.outgoing = out;
    this._queue.add(req);
    req.onReply = (msg) => this._onSendReply(req, msg);
    this._emit('outgoing', out);
    this._pump();
    return out;
  }

  /** @private */
  _onSendReply(req, msg) {
    const out = req.outgoing;
    if (!msg.error) {
      this._settle(req, null, msg.ok);
      return;
    }
    const err = wireError(msg.error, { op: 'send', room: out.room });
    req.refusals++;
    const retry = (err.code === 'unavailable' || err.code === 'busy') && req.refusals < this._maxSendAttempts;
    if (!retry) {
      this._settle(req, err);
      return;
    }
    // Retry with the same client_msg_id after a jittered pause (PROTOCOL.md:
    // unavailable and busy are retried; the id makes the retry safe).
    out.error = err;
    req.notBefore = Date.now() + backoffDelay(req.refusals, this._backoff, this._random, err.retryAfterMs || 0);
    this._emit('outgoing', out);
    this._pump();
  }

  /** @private */
  _finishOutgoing(out, err, ok) {
    if (out.state !== 'pending') return;
    if (err) {
      out.state = 'failed';
      out.error = err;
      out._reject(err);
    } else {
      out.state = 'acknowledged';
      out.error = null;
      out.ack = ok;
      out._resolve(ok);
    }
    this._emit('outgoing', out);
  }

  /** @returns {Outgoing[]} sends not yet acknowledged or failed, oldest first */
  pendingSends() {
    return [...this._queue].filter((r) => r.isSend).map((r) => r.outgoing);
  }

  /* ---- commands --------------------------------------------------------- */

  /**
   * A page of a joined room's history, ascending: with `before` (or neither)
   * the `limit` messages below it (the latest ones), with `after` those above.
   * @param {string} room
   * @param {{before?: number, after?: number, limit?: number}} [opts]
   * @returns {Promise<{room: string, messages: object[], has_more: boolean}>}
   */
  history(room, opts = {}) {
    return this._request('history', { room, ...pick(opts, ['before', 'after', 'limit']) });
  }

  /**
   * Pages backwards from `before` (default: the latest) until the start of
   * the room: `for await (const page of client.olderHistory(room)) ...`.
   * Each page is ascending; pages come newest first.
   * @param {string} room
   * @param {{before?: number, limit?: number}} [opts]
   * @returns {AsyncGenerator<object[]>}
   */
  async *olderHistory(room, opts = {}) {
    let before = opts.before;
    for (;;) {
      const q = { limit: opts.limit ?? 50 };
      if (before !== undefined) q.before = before;
      const page = await this.history(room, q);
      if (page.messages.length) {
        yield page.messages;
        before = page.messages[0].seq;
      }
      if (!page.has_more || !page.messages.length || before <= 1) return;
    }
  }

  /** @returns {Promise<{ts: number}>} */
  ping() {
    return this._request('ping', {});
  }

  /**
   * "I have read everything up to seq" (the watermark only moves forward).
   * @param {string} room @param {number} seq
   * @returns {Promise<{room: string, up_to: number}>}
   */
  read(room, seq) {
    return this._request('read', { room, seq });
  }

  /**
   * One dialogue entry seen out of order.
   * @param {string} room @param {number} seq
   * @returns {Promise<{room: string, seq: number}>}
   */
  seen(room, seq) {
    return this._request('seen', { room, seq });
  }

  /**
   * Likes a chat message (idempotent: a second like changes nothing and
   * the answer then has no aggregates).
   * @param {string} room @param {number} seq
   * @returns {Promise<{room: string, seq: number, likes?: number, v?: number}>}
   */
  like(room, seq) {
    return this._request('like', { room, seq });
  }

  /**
   * @param {string} room @param {number} seq
   * @returns {Promise<{room: string, seq: number, likes?: number, v?: number}>}
   */
  unlike(room, seq) {
    return this._request('unlike', { room, seq });
  }

  /**
   * 1 to 5 stars on a dialogue entry or reply (changeable).
   * @param {string} room @param {number} seq @param {number} stars
   * @returns {Promise<{room: string, seq: number, stars?: number, star_avg?: number, v?: number}>}
   */
  rate(room, seq, stars) {
    return this._request('rate', { room, seq, stars });
  }

  /**
   * @param {string} room @param {number} seq
   * @returns {Promise<{room: string, seq: number, stars?: number, star_avg?: number, v?: number}>}
   */
  unrate(room, seq) {
    return this._request('unrate', { room, seq });
  }

  /**
   * Unread counts of every room I may join.
   * @returns {Promise<{rooms: {room: string, last_seq: number, up_to: number, unread: number}[]}>}
   */
  unread() {
    return this._request('unread', {});
  }

  /**
   * Who has seen a message, and when.
   * @param {string} room @param {number} seq
   * @returns {Promise<{room: string, seq: number, seen: {person: string, at: number, how: string}[], count: number, of: number}>}
   */
  seenBy(room, seq) {
    return this._request('seen_by', { room, seq });
  }

  /**
   * Which entries a person (default: me) has seen in a room.
   * @param {string} room @param {string} [person]
   * @returns {Promise<{room: string, person: string, up_to: number, seen: number[]}>}
   */
  seenEntries(room, person) {
    return this._request('seen_entries', person ? { room, person } : { room });
  }

  /**
   * What I liked and rated (in one room, or everywhere).
   * @param {string} [room]
   * @returns {Promise<{likes: object[], ratings: object[]}>}
   */
  myVotes(room) {
    return this._request('my_votes', room ? { room } : {});
  }

  /**
   * A dialogue room's entries with their aggregates and replies.
   * @param {string} room
   * @param {{sort?: 'newest'|'rating', limit?: number, offset?: number}} [opts]
   * @returns {Promise<{room: string, entries: object[], has_more: boolean}>}
   */
  entries(room, opts = {}) {
    return this._request('entries', { room, ...pick(opts, ['sort', 'limit', 'offset']) });
  }

  /**
   * Tells the room I am typing; at most one event per second is sent.
   * @param {string} room
   * @returns {Promise<{sent: boolean}>}
   */
  typing(room) {
    return this._request('typing', { room });
  }

  /* Moderation (PROTOCOL.md "Moderation"); not repeated after a lost connection. */

  /**
   * Deletes a message: my own within the edit window, or any as moderator.
   * @param {string} room @param {number} seq @param {string} [reason]
   * @returns {Promise<{room: string, seq: number, deleted: boolean, event_seq: number}>}
   */
  deleteMessage(room, seq, reason) {
    return this._request('delete', withReason({ room, seq }, reason));
  }

  /**
   * Edits my own message within the edit window.
   * @param {string} room @param {number} seq @param {string} body
   * @returns {Promise<{room: string, seq: number, edited: number, event_seq: number}>}
   */
  edit(room, seq, body) {
    return this._request('edit', { room, seq, body });
  }

  /**
   * Held and shadowed messages: all (moderators) or my own.
   * @param {string} room
   * @returns {Promise<{room: string, items: object[]}>}
   */
  pendingMessages(room) {
    return this._request('pending', { room });
  }

  /**
   * Moderator: delivers a held message (it takes the room's next seq).
   * @param {string} room @param {number} pending @param {string} [reason]
   * @returns {Promise<{room: string, pending: number, state: 'approved', seq: number}>}
   */
  approve(room, pending, reason) {
    return this._request('approve', withReason({ room, pending }, reason));
  }

  /**
   * Moderator: drops a held or shadowed message.
   * @param {string} room @param {number} pending @param {string} [reason]
   * @returns {Promise<{room: string, pending: number, state: 'rejected'}>}
   */
  reject(room, pending, reason) {
    return this._request('reject', withReason({ room, pending }, reason));
  }

  /**
   * @param {string} person
   * @param {number} durationS 1 to 31536000
   * @param {{room?: string, reason?: string}} [opts] without room: the whole workspace
   * @returns {Promise<{person_id: string, room_id: string|null, until: number, reason: string|null}>}
   */
  mute(person, durationS, opts = {}) {
    return this._request('mute', { person, duration_s: durationS, ...pick(opts, ['room', 'reason']) });
  }

  /**
   * @param {string} person
   * @param {{room?: string, reason?: string}} [opts]
   * @returns {Promise<{person_id: string, room_id: string|null, lifted: boolean}>}
   */
  unmute(person, opts = {}) {
    return this._request('unmute', { person, ...pick(opts, ['room', 'reason']) });
  }

  /**
   * Moderator: takes a person out of a room on every gateway.
   * @param {string} room @param {string} person @param {string} [reason]
   * @returns {Promise<{room_id: string, person_id: string, removed: boolean}>}
   */
  remove(room, person, reason) {
    return this._request('remove', withReason({ room, person }, reason));
  }

  /**
   * @param {string} room
   * @param {{locked?: boolean, slow_mode_s?: number, reason?: string}} settings
   * @returns {Promise<{room: string, locked: boolean, slow_mode_s: number, event_seq: number}>}
   */
  roomSettings(room, settings) {
    return this._request('room_settings', { room, ...pick(settings, ['locked', 'slow_mode_s', 'reason']) });
  }
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj && obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function withReason(fields, reason) {
  return reason === undefined ? fields : { ...fields, reason };
}

/* A presence push: a snapshot (`online`) replaces, a diff (`joined`/`left`)
 * updates; rooms over the list limit carry only `count`. */
function applyPresence(prev, p) {
  const next = { count: p.count, online: null };
  if (Array.isArray(p.online)) {
    next.online = new Map(p.online.map((x) => [x.person, x]));
  } else if (prev && prev.online && (Array.isArray(p.joined) || Array.isArray(p.left))) {
    next.online = new Map(prev.online);
    for (const x of p.left || []) next.online.delete(x.person);
    for (const x of p.joined || []) next.online.set(x.person, x);
  }
  return next;
}
