// Herald browser client: a dependency-free ES module around EventSource.
// Load it from Herald itself (`import { HeraldClient } from 'https://herald.example.com/herald-client.js'`)
// or copy it into a bundled app. It touches no browser global until `connect()` is called.

/** @typedef {'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed'} HeraldState */

/**
 * @typedef {object} HeraldOptions
 * @property {string} [url] Herald's base URL; '' (the default) is the page's own origin.
 * @property {string | (() => string | Promise<string>)} token A subscriber JWT, or a function that
 *   returns one (called again whenever the stream has to be reopened, so an expired token is replaced).
 * @property {string[]} [topics] Topics to receive besides the user's own notifications and broadcasts.
 * @property {string | null} [resumeKey] sessionStorage key for the last event id (default
 *   'herald:last-event-id'); null keeps it in memory only.
 * @property {number} [lastEventId] Resume after this id when nothing newer is stored.
 * @property {number} [offlineAfterMs] How long the stream may be down before the state says
 *   'offline' rather than 'reconnecting' (default 10000).
 * @property {boolean} [withCredentials] Send cookies cross-origin (for the herald_token cookie).
 * @property {typeof EventSource} [EventSource] An EventSource implementation (default: the global one).
 * @property {Pick<Storage, 'getItem' | 'setItem'>} [storage] Where the resume point is kept (default: sessionStorage).
 */

const eventTypes = /** @type {const} */ (['notification', 'read', 'deleted', 'reload']);
const defaultResumeKey = 'herald:last-event-id';
const maxBackoffMs = 30_000;

export class HeraldClient {
  /** @param {HeraldOptions} options */
  constructor(options) {
    if (!options || (typeof options.token !== 'string' && typeof options.token !== 'function')) {
      throw new TypeError('HeraldClient needs a token (a string or a function returning one)');
    }
    this.options = options;
    this.base = (options.url ?? '').replace(/\/+$/, '');
    this.topics = [...(options.topics ?? [])];
    this.resumeKey = options.resumeKey === undefined ? defaultResumeKey : options.resumeKey;
    this.offlineAfterMs = options.offlineAfterMs ?? 10_000;
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {HeraldState} */
    this.state = 'idle';
    /** @type {EventSource | null} */
    this.source = null;
    /** @type {number | undefined} */
    this.lastEventId = options.lastEventId;
    this.failures = 0;
    this.downSince = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.offlineTimer = undefined;
    // Bumped on every (re)open and on close, so a token that resolves late cannot open a stale stream.
    this.generation = 0;
    this.onOnline = () => {
      if (this.state === 'connected' || this.state === 'closed') return;
      // Before its first event this client knows no resume point, only the browser's EventSource does
      // (see open()): one still retrying by itself is left to it, a new one would start from now.
      if (this.source && this.lastEventId === undefined) return;
      this.reopenSoon(0);
    };
    this.onOffline = () => {
      if (this.state !== 'closed') this.setState('offline');
    };
  }

  /**
   * Listens for `notification`, `read`, `deleted`, `reload` (payloads as in Herald's README), `state`
   * (state, previous) or `error` (an Error when a reopen fails). Returns a function that removes the listener.
   * @param {'notification' | 'read' | 'deleted' | 'reload' | 'state' | 'error'} type
   * @param {(...args: any[]) => void} listener
   */
  on(type, listener) {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Opens the stream, resuming after the last id seen in this tab (kept across reloads). */
  connect() {
    if (this.state !== 'idle') return this;
    const stored = this.readStoredId();
    if (stored !== undefined && (this.lastEventId === undefined || stored > this.lastEventId)) this.lastEventId = stored;
    globalThis.addEventListener?.('online', this.onOnline);
    globalThis.addEventListener?.('offline', this.onOffline);
    void this.open('connecting');
    return this;
  }

  /** Ends the stream for good: no reconnect, no more events. */
  close() {
    if (this.state === 'closed') return;
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.offlineTimer);
    this.source?.close();
    this.source = null;
    globalThis.removeEventListener?.('online', this.onOnline);
    globalThis.removeEventListener?.('offline', this.onOffline);
    this.setState('closed');
  }

  /** @param {HeraldState} pending the state to show while the stream opens */
  async open(pending) {
    const generation = ++this.generation;
    this.setState(pending);
    let token;
    try {
      token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    } catch (err) {
      if (generation !== this.generation) return;
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
      this.streamDown();
      return;
    }
    if (generation !== this.generation) return;
    const ES = this.options.EventSource ?? globalThis.EventSource;
    const source = new ES(this.streamUrl(token), { withCredentials: Boolean(this.options.withCredentials) });
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.downSince = 0;
      clearTimeout(this.offlineTimer);
      this.setState('connected');
    };
    source.onerror = () => {
      if (this.source !== source) return;
      // CONNECTING: the browser retries by itself and sends Last-Event-ID. CLOSED: it gave up (an HTTP
      // error such as 401 for an expired token, or 429/503): reopen with a fresh token, backing off.
      if (source.readyState === ES.CLOSED) {
        source.close();
        this.source = null;
        this.streamDown();
      } else {
        this.markDown();
      }
    };
    for (const type of eventTypes) {
      source.addEventListener(type, (/** @type {MessageEvent} */ e) => {
        if (this.source !== source) return;
        // Herald starts every stream with an event that has an id and no data: the browser keeps the id
        // (and sends it as Last-Event-ID when it reconnects by itself) but dispatches nothing, and no
        // EventSource API shows it. Every later event, of any type, carries it as `lastEventId` (the
        // stream's last id, not only the event's own), so the first one is where the stored resume point
        // learns it.
        if (e.lastEventId !== '') this.remember(Number(e.lastEventId));
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        this.emit(type, data, e);
      });
    }
  }

  /** The stream URL. The resume point goes in the query: only the browser's own reconnects send Last-Event-ID. */
  streamUrl(token) {
    const q = new URLSearchParams();
    q.set('token', token);
    for (const t of this.topics) q.append('topic', t);
    if (this.lastEventId !== undefined) q.set('lastEventId', String(this.lastEventId));
    return `${this.base}/events?${q}`;
  }

  markDown() {
    if (this.downSince === 0) {
      this.downSince = Date.now();
      clearTimeout(this.offlineTimer);
      this.offlineTimer = setTimeout(() => {
        if (this.state === 'reconnecting') this.setState('offline');
      }, this.offlineAfterMs);
    }
    const offline = (typeof navigator !== 'undefined' && navigator.onLine === false) || Date.now() - this.downSince >= this.offlineAfterMs;
    this.setState(offline ? 'offline' : 'reconnecting');
  }

  streamDown() {
    this.markDown();
    // Exponential backoff with jitter, so a restarted server is not met by every client at once.
    const delay = Math.min(maxBackoffMs, 1000 * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.failures++;
    this.reopenSoon(delay);
  }

  /** @param {number} delay */
  reopenSoon(delay) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.source?.close();
      this.source = null;
      void this.open(this.state === 'offline' ? 'offline' : 'reconnecting');
    }, delay);
  }

  /** @param {number} id */
  remember(id) {
    if (!Number.isSafeInteger(id)) return;
    this.lastEventId = id;
    if (this.resumeKey === null) return;
    try {
      this.storage()?.setItem(this.resumeKey, String(id));
    } catch {
      // Storage can be full or blocked (private modes); resuming within this page still works.
    }
  }

  /** @returns {number | undefined} */
  readStoredId() {
    if (this.resumeKey === null) return undefined;
    try {
      const raw = this.storage()?.getItem(this.resumeKey);
      return raw && /^\d+$/.test(raw) ? Number(raw) : undefined;
    } catch {
      return undefined;
    }
  }

  storage() {
    if (this.options.storage) return this.options.storage;
    return typeof sessionStorage === 'undefined' ? undefined : sessionStorage;
  }

  /** @param {HeraldState} state */
  setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.emit('state', state, previous);
  }

  /** @param {string} type @param {...unknown} args */
  emit(type, ...args) {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        listener(...args);
      } catch (err) {
        // One failing listener must not stop the others or the stream.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
