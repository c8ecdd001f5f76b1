// Herald's headless browser client: `HeraldClient` (the stream, resuming by id) and `HeraldInbox` (a
// small observable store over it: history, unread count, read/delete with undo, tabs kept in step).
// Dependency-free ES module; it touches no browser global until `connect()` / `start()` is called.

export type HeraldState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed';

export interface HeraldActor {
  name: string;
  avatar?: string | null;
}

export interface HeraldAction {
  label: string;
  url: string;
}

export interface HeraldNotification {
  id: number;
  title: string;
  body: string | null;
  data: Record<string, unknown> | null;
  type: string | null;
  topic: string | null;
  broadcast: boolean;
  createdAt: string;
  /** Optional fields (null when absent); a Herald older than these leaves them out. */
  url?: string | null;
  icon?: string | null;
  actor?: HeraldActor | null;
  actions?: HeraldAction[] | null;
  critical?: boolean;
}

export type HeraldReadEvent = { ids: number[] } | { all: true; upTo: number };

export interface HeraldEvents {
  notification: (n: HeraldNotification, event: MessageEvent) => void;
  read: (e: HeraldReadEvent, event: MessageEvent) => void;
  deleted: (e: { id: number }, event: MessageEvent) => void;
  reload: (e: { reason: 'catchup-limit' | 'pruned' | 'ahead-of-server'; lastId: number }, event: MessageEvent) => void;
  unread: (e: { count: number }, event: MessageEvent) => void;
  /** The stream (re)opened: what follows until the next `unread` is the catch-up. */
  open: () => void;
  state: (state: HeraldState, previous: HeraldState) => void;
  error: (err: Error) => void;
}

/** The parts of EventSource the client uses: the browser's, or e.g. the `eventsource` package in Node. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: Event) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  addEventListener(type: string, listener: (ev: MessageEvent) => void): void;
  close(): void;
}

export type TokenSource = string | (() => string | Promise<string>);

export interface HeraldOptions {
  /** Herald's base URL; '' (the default) is the page's own origin. */
  url?: string;
  /** A subscriber JWT, or a function returning one, called again whenever a token is needed anew. */
  token: TokenSource;
  /** Topics to receive besides the user's own notifications and broadcasts. */
  topics?: string[];
  /** sessionStorage key for the resume point (default 'herald:last-event-id'); null keeps it in memory. */
  resumeKey?: string | null;
  /** Resume after this id when nothing newer is stored. */
  lastEventId?: number;
  /** How long the stream may be down before the state is 'offline' rather than 'reconnecting' (default 10000). */
  offlineAfterMs?: number;
  /** Send cookies cross-origin (for the herald_token cookie). */
  withCredentials?: boolean;
  /** An EventSource implementation (default: the global one). */
  EventSource?: {
    new (url: string, init?: { withCredentials?: boolean }): EventSourceLike;
    readonly CLOSED: number;
  };
  /** Where the resume point is kept (default: sessionStorage). */
  storage?: Pick<Storage, 'getItem' | 'setItem'>;
}

type Listener = (...args: never[]) => void;

const streamEvents = ['notification', 'read', 'deleted', 'reload', 'unread'] as const;
const defaultResumeKey = 'herald:last-event-id';
const maxBackoffMs = 30_000;

/** A tiny typed event emitter; one failing listener never stops the others. */
class Emitter<E extends { [K in keyof E]: Listener }> {
  private readonly listeners = new Map<keyof E, Set<Listener>>();

  on<K extends keyof E>(type: K, listener: E[K]): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  protected emit<K extends keyof E>(type: K, ...args: Parameters<E[K]>): void {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        (listener as (...a: Parameters<E[K]>) => void)(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

export class HeraldClient extends Emitter<HeraldEvents> {
  readonly options: HeraldOptions;
  readonly base: string;
  readonly topics: string[];
  state: HeraldState = 'idle';
  /** The stream's last id, as the latest event received carried it; the stream resumes after it. */
  lastEventId: number | undefined;
  private readonly resumeKey: string | null;
  private readonly offlineAfterMs: number;
  private source: EventSourceLike | null = null;
  private failures = 0;
  private downSince = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private offlineTimer: ReturnType<typeof setTimeout> | undefined;
  // Bumped on every (re)open and on close, so a token that resolves late cannot open a stale stream.
  private generation = 0;

  constructor(options: HeraldOptions) {
    super();
    if (!options || (typeof options.token !== 'string' && typeof options.token !== 'function')) {
      throw new TypeError('HeraldClient needs a token (a string or a function returning one)');
    }
    this.options = options;
    this.base = (options.url ?? '').replace(/\/+$/, '');
    this.topics = [...(options.topics ?? [])];
    this.resumeKey = options.resumeKey === undefined ? defaultResumeKey : options.resumeKey;
    this.offlineAfterMs = options.offlineAfterMs ?? 10_000;
    this.lastEventId = options.lastEventId;
  }

  private readonly onOnline = () => {
    if (this.state === 'connected' || this.state === 'closed') return;
    // Before its first event this client knows no resume point, only the browser's EventSource does
    // (see open()): one still retrying by itself is left to it, a new one would start from now.
    if (this.source && this.lastEventId === undefined) return;
    this.reopenSoon(0);
  };

  private readonly onOffline = () => {
    if (this.state !== 'closed') this.setState('offline');
  };

  /** Opens the stream, resuming after the last id seen in this tab (kept across reloads); after close() too. */
  connect(): this {
    if (this.state !== 'idle' && this.state !== 'closed') return this;
    const stored = this.readStoredId();
    if (stored !== undefined && (this.lastEventId === undefined || stored > this.lastEventId)) this.lastEventId = stored;
    globalThis.addEventListener?.('online', this.onOnline);
    globalThis.addEventListener?.('offline', this.onOffline);
    void this.open('connecting');
    return this;
  }

  /** Ends the stream: no reconnect, no more events until connect() is called again. */
  close(): void {
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

  /** The current token: the string, or what the function gives now. */
  token(): Promise<string> {
    const { token } = this.options;
    return Promise.resolve(typeof token === 'function' ? token() : token);
  }

  private async open(pending: HeraldState): Promise<void> {
    const generation = ++this.generation;
    this.setState(pending);
    let token: string;
    try {
      token = await this.token();
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
      this.emit('open');
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
    for (const type of streamEvents) {
      source.addEventListener(type, (e: MessageEvent) => {
        if (this.source !== source) return;
        // Herald starts every stream with an event that has an id and no data: the browser keeps the id
        // (and sends it as Last-Event-ID when it reconnects by itself) but dispatches nothing, and no
        // EventSource API shows it. Every later event, of any type, carries it as `lastEventId` (the
        // stream's last id, not only the event's own), so the first one is where the stored resume point
        // learns it.
        if (e.lastEventId !== '') this.remember(Number(e.lastEventId));
        let data: unknown;
        try {
          data = JSON.parse(String(e.data));
        } catch {
          return;
        }
        // The payload's shape is Herald's (README, The stream); the emitter's types name it per event.
        this.emit(type, data as never, e);
      });
    }
  }

  /** The stream URL. The resume point goes in the query: only the browser's own reconnects send Last-Event-ID. */
  streamUrl(token: string): string {
    const q = new URLSearchParams();
    q.set('token', token);
    for (const t of this.topics) q.append('topic', t);
    if (this.lastEventId !== undefined) q.set('lastEventId', String(this.lastEventId));
    return `${this.base}/events?${q}`;
  }

  private markDown(): void {
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

  private streamDown(): void {
    this.markDown();
    // Exponential backoff with jitter, so a restarted server is not met by every client at once.
    const delay = Math.min(maxBackoffMs, 1000 * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.failures++;
    this.reopenSoon(delay);
  }

  private reopenSoon(delay: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.source?.close();
      this.source = null;
      void this.open(this.state === 'offline' ? 'offline' : 'reconnecting');
    }, delay);
  }

  private remember(id: number): void {
    if (!Number.isSafeInteger(id)) return;
    this.lastEventId = id;
    if (this.resumeKey === null) return;
    try {
      this.storage()?.setItem(this.resumeKey, String(id));
    } catch {
      // Storage can be full or blocked (private modes); resuming within this page still works.
    }
  }

  private readStoredId(): number | undefined {
    if (this.resumeKey === null) return undefined;
    try {
      const raw = this.storage()?.getItem(this.resumeKey);
      return raw && /^\d+$/.test(raw) ? Number(raw) : undefined;
    } catch {
      return undefined;
    }
  }

  private storage(): Pick<Storage, 'getItem' | 'setItem'> | undefined {
    if (this.options.storage) return this.options.storage;
    return typeof sessionStorage === 'undefined' ? undefined : sessionStorage;
  }

  private setState(state: HeraldState): void {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.emit('state', state, previous);
  }
}

// ------------------------------------------------------------------------------------------ the store

export interface InboxItem extends HeraldNotification {
  read: boolean;
}

/** What the store knows at one moment. Immutable: a new object only when something changed. */
export interface InboxSnapshot {
  /** Loaded notifications, newest first, without those waiting out their undo window. */
  readonly items: readonly InboxItem[];
  /** Unread notifications of the user (all of them, not only the loaded ones); null until known. */
  readonly unreadCount: number | null;
  readonly state: HeraldState;
  /** The browser's own idea (navigator.onLine); `state` says whether the stream is up. */
  readonly online: boolean;
  /** Older history is left to load with `loadMore()`. */
  readonly hasMore: boolean;
  readonly loading: boolean;
  /** Ids deleted in this tab and still undoable, oldest first. */
  readonly pendingDeletes: readonly number[];
  /** The last failed request's message, until the next one succeeds. */
  readonly error: string | null;
}

export interface InboxEvents {
  /** A notification that arrived live (not during a catch-up). */
  live: (n: InboxItem) => void;
  /** The notifications a (re)opened stream replayed, once it has caught up (only when there were some). */
  caughtUp: (items: InboxItem[]) => void;
  error: (err: Error) => void;
}

export interface InboxOptions extends HeraldOptions {
  /** History page size (default 20). */
  pageSize?: number;
  /** How long a delete can be undone before it is sent (default 5000 ms). */
  undoMs?: number;
  /** BroadcastChannel name shared by this user's tabs (default from `resumeKey`); null: no channel. */
  channel?: string | null;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

/** What tabs tell each other at once, before the server's read/deleted events arrive. */
type TabMessage = { kind: 'read'; ids: number[] } | { kind: 'read-all'; upTo: number } | { kind: 'hide' | 'unhide'; id: number };

/** How long a stream may stay quiet after opening before a Herald without `unread` events is assumed. */
const catchUpFallbackMs = 1000;

export class HeraldInbox extends Emitter<InboxEvents> {
  readonly client: HeraldClient;
  private readonly options: InboxOptions;
  private readonly items = new Map<number, InboxItem>();
  /**
   * Every id the stream has delivered, deleted ones too: a notification replayed after a reconnect is
   * not new twice. History does not add to it: a page of history can hold a notification published
   * after the count was told, whose live event must still count.
   */
  private readonly seen = new Set<number>();
  private readonly hidden = new Map<number, ReturnType<typeof setTimeout>>();
  private readonly pending = new Map<number, { timer: ReturnType<typeof setTimeout>; commit: () => void }>();
  private readonly stopFns: (() => void)[] = [];
  private running = false;
  private unread: number | null = null;
  private serverCounts = false;
  private cursor: string | null = null;
  private loadedOnce = false;
  private loading = false;
  private error: string | null = null;
  private online = true;
  private catchingUp = false;
  private replayed: InboxItem[] = [];
  private catchUpTimer: ReturnType<typeof setTimeout> | undefined;
  private channel: BroadcastChannel | null = null;
  private snapshot: InboxSnapshot | null = null;
  private readonly watchers = new Set<() => void>();
  private notifyQueued = false;

  constructor(options: InboxOptions) {
    super();
    this.options = options;
    this.client = new HeraldClient(options);
  }

  // ------------------------------------------------------------------------------- observable store

  subscribe = (listener: () => void): (() => void) => {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  };

  getSnapshot = (): InboxSnapshot => {
    if (!this.snapshot) {
      const items = [...this.items.values()].filter((n) => !this.hidden.has(n.id) && !this.pending.has(n.id)).sort((a, b) => b.id - a.id);
      this.snapshot = Object.freeze({
        items: Object.freeze(items),
        unreadCount: this.unread,
        state: this.client.state,
        online: this.online,
        hasMore: !this.loadedOnce || this.cursor !== null,
        loading: this.loading,
        pendingDeletes: Object.freeze([...this.pending.keys()]),
        error: this.error,
      });
    }
    return this.snapshot;
  };

  /** Marks the snapshot stale; listeners hear once per microtask however many changes came. */
  private changed(): void {
    this.snapshot = null;
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const l of [...this.watchers]) l();
    });
  }

  // ----------------------------------------------------------------------------------------- life

  /** Opens the stream, loads the first history page and joins the other tabs. */
  start(): this {
    // Startable again after stop(), as React's StrictMode does with effects.
    if (this.running) return this;
    this.running = true;
    const c = this.client;
    this.stopFns.push(
      c.on('open', () => this.beginCatchUp()),
      c.on('state', () => this.changed()),
      c.on('notification', (n) => this.received(n)),
      c.on('unread', ({ count }) => this.serverCount(count)),
      c.on('read', (e) => this.applyRead(e)),
      c.on('deleted', ({ id }) => this.forget(id)),
      c.on('reload', () => void this.loadPage(true)),
      c.on('error', (err) => this.emit('error', err)),
    );
    this.online = typeof navigator === 'undefined' || navigator.onLine !== false;
    const onLine = () => {
      this.online = typeof navigator === 'undefined' || navigator.onLine !== false;
      this.changed();
    };
    globalThis.addEventListener?.('online', onLine);
    globalThis.addEventListener?.('offline', onLine);
    // A delete still in its undo window is sent when the page goes away (keepalive outlives the page).
    const flush = () => this.flushDeletes();
    globalThis.addEventListener?.('pagehide', flush);
    this.stopFns.push(() => {
      globalThis.removeEventListener?.('online', onLine);
      globalThis.removeEventListener?.('offline', onLine);
      globalThis.removeEventListener?.('pagehide', flush);
    });
    this.openChannel();
    c.connect();
    void this.loadPage(true);
    return this;
  }

  /** Closes the stream and the channel; deletes still undoable are sent now. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.flushDeletes();
    clearTimeout(this.catchUpTimer);
    for (const t of this.hidden.values()) clearTimeout(t);
    for (const fn of this.stopFns.splice(0)) fn();
    this.channel?.close();
    this.channel = null;
    this.client.close();
    this.changed();
  }

  // ---------------------------------------------------------------------------------- the stream

  private beginCatchUp(): void {
    this.catchingUp = true;
    this.replayed = [];
    clearTimeout(this.catchUpTimer);
    // Herald sends `unread` right after a stream's catch-up; one that never does is an older server.
    this.catchUpTimer = setTimeout(() => this.endCatchUp(), catchUpFallbackMs);
  }

  private endCatchUp(): void {
    clearTimeout(this.catchUpTimer);
    if (!this.catchingUp) return;
    this.catchingUp = false;
    const replayed = this.replayed;
    this.replayed = [];
    if (replayed.length > 0) this.emit('caughtUp', replayed);
    if (!this.serverCounts) void this.askCount();
  }

  /**
   * Only for a Herald that sends no `unread` events (older than this client): the count is asked after
   * each catch-up instead, and kept locally between them.
   */
  private async askCount(): Promise<void> {
    const res = await this.request<{ count: number }>('GET', `/notifications/unread-count${this.topicQuery('?')}`);
    if (res && !this.serverCounts) {
      this.unread = res.count;
      this.changed();
    }
  }

  private serverCount(count: number): void {
    this.serverCounts = true;
    this.unread = count;
    this.endCatchUp();
    this.changed();
  }

  private received(n: HeraldNotification): void {
    if (this.seen.has(n.id)) return;
    this.seen.add(n.id);
    const item = this.items.get(n.id) ?? { ...n, read: false };
    this.items.set(n.id, item);
    // Read already (history said so: another device, say): nothing new to count or tell.
    if (item.read) return this.changed();
    // A catch-up ends with the exact count (the `unread` event), so only live ones add to it.
    if (this.catchingUp) {
      this.replayed.push(item);
    } else {
      if (this.unread !== null) this.unread++;
      this.emit('live', item);
    }
    this.changed();
  }

  private applyRead(e: HeraldReadEvent): void {
    for (const [id, n] of this.items) {
      if ('all' in e ? id <= e.upTo : e.ids.includes(id)) this.setRead(n);
    }
    this.changed();
  }

  private setRead(n: InboxItem): void {
    if (n.read) return;
    this.items.set(n.id, { ...n, read: true });
    if (this.unread !== null && !this.hidden.has(n.id) && !this.pending.has(n.id)) this.unread = Math.max(0, this.unread - 1);
  }

  private forget(id: number): void {
    const n = this.items.get(id);
    const wasCounted = n && !n.read && !this.hidden.has(id) && !this.pending.has(id);
    this.items.delete(id);
    clearTimeout(this.hidden.get(id));
    this.hidden.delete(id);
    const p = this.pending.get(id);
    if (p) clearTimeout(p.timer);
    this.pending.delete(id);
    if (wasCounted && this.unread !== null) this.unread = Math.max(0, this.unread - 1);
    this.changed();
  }

  // -------------------------------------------------------------------------------------- history

  /** Loads the next (older) page of history. */
  loadMore(): Promise<void> {
    return this.loadPage(false);
  }

  /** The first page again (reset) or the next one, merged by id so live arrivals are never lost. */
  private async loadPage(reset: boolean): Promise<void> {
    if (this.loading || (!reset && this.loadedOnce && this.cursor === null)) return;
    this.loading = true;
    this.changed();
    const q = new URLSearchParams({ limit: String(this.options.pageSize ?? 20) });
    for (const t of this.client.topics) q.append('topic', t);
    // The stream's own list: the user's, broadcasts and these topics (`?topic=` alone would filter).
    if (this.client.topics.length > 0) q.set('scope', 'stream');
    if (!reset && this.cursor) q.set('before', this.cursor);
    // Anything shown when the request left and absent from a fresh first page is gone (deleted meanwhile).
    const before = reset && this.loadedOnce ? [...this.items.keys()] : [];
    const page = await this.request<{ items: InboxItem[]; nextCursor: string | null }>('GET', `/notifications?${q}`);
    this.loading = false;
    if (page) {
      const inPage = new Set(page.items.map((n) => n.id));
      const oldest = page.nextCursor === null ? 0 : Math.min(...inPage);
      for (const id of before) if (!inPage.has(id) && id >= oldest) this.forget(id);
      for (const n of page.items) if (!this.items.has(n.id)) this.items.set(n.id, n);
      this.cursor = page.nextCursor;
      this.loadedOnce = true;
    }
    this.changed();
  }

  // -------------------------------------------------------------------------------------- actions

  /** Marks one read (at once here and in the other tabs, then on the server). */
  async markRead(id: number): Promise<void> {
    const n = this.items.get(id);
    if (n) this.setRead(n);
    this.changed();
    this.post({ kind: 'read', ids: [id] });
    await this.request('POST', `/notifications/${id}/read`);
  }

  /** Marks everything up to now read. */
  async markAllRead(): Promise<void> {
    const upTo = Math.max(0, ...this.items.keys());
    this.applyRead({ all: true, upTo });
    this.post({ kind: 'read-all', upTo });
    await this.request('POST', '/notifications/read-all');
  }

  /**
   * Deletes one, after the undo window: it leaves the list at once (here and in the other tabs) and is
   * sent to the server when `undoMs` has passed, when the store stops or when the page goes away.
   */
  remove(id: number): void {
    if (this.pending.has(id) || !this.items.has(id)) return;
    const n = this.items.get(id)!;
    if (!n.read && this.unread !== null) this.unread = Math.max(0, this.unread - 1);
    const commit = () => {
      this.pending.delete(id);
      this.items.delete(id);
      this.changed();
      void this.request('DELETE', `/notifications/${id}`, { keepalive: true });
    };
    this.pending.set(id, { timer: setTimeout(commit, this.options.undoMs ?? 5000), commit });
    this.post({ kind: 'hide', id });
    this.changed();
  }

  /** Takes back a delete still in its undo window. */
  undoRemove(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    const n = this.items.get(id);
    if (n && !n.read && this.unread !== null) this.unread++;
    this.post({ kind: 'unhide', id });
    this.changed();
  }

  private flushDeletes(): void {
    for (const p of [...this.pending.values()]) {
      clearTimeout(p.timer);
      p.commit();
    }
  }

  // ------------------------------------------------------------------------------------------ tabs

  private openChannel(): void {
    const name = this.options.channel === undefined ? `herald-inbox:${this.options.resumeKey ?? defaultResumeKey}` : this.options.channel;
    if (name === null || typeof BroadcastChannel === 'undefined') return;
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (e: MessageEvent<TabMessage>) => this.fromTab(e.data);
  }

  private post(m: TabMessage): void {
    this.channel?.postMessage(m);
  }

  private fromTab(m: TabMessage): void {
    if (m.kind === 'read') this.applyRead({ ids: m.ids });
    else if (m.kind === 'read-all') this.applyRead({ all: true, upTo: m.upTo });
    else if (m.kind === 'hide') this.hideForPeer(m.id);
    else {
      clearTimeout(this.hidden.get(m.id));
      this.unhide(m.id);
    }
  }

  /** Hidden while another tab's undo window runs; shown again if that tab vanished without deleting. */
  private hideForPeer(id: number): void {
    const n = this.items.get(id);
    if (!n || this.hidden.has(id)) return;
    if (!n.read && this.unread !== null) this.unread = Math.max(0, this.unread - 1);
    this.hidden.set(
      id,
      setTimeout(() => this.unhide(id), 2 * (this.options.undoMs ?? 5000) + 5000),
    );
    this.changed();
  }

  private unhide(id: number): void {
    if (!this.hidden.delete(id)) return;
    const n = this.items.get(id);
    if (n && !n.read && this.unread !== null) this.unread++;
    this.changed();
  }

  // ------------------------------------------------------------------------------------------ HTTP

  private topicQuery(prefix: string): string {
    const q = new URLSearchParams();
    for (const t of this.client.topics) q.append('topic', t);
    if (this.client.topics.length > 0) q.set('scope', 'stream');
    const s = q.toString();
    return s ? prefix + s : '';
  }

  /**
   * A request to Herald's API with the subscriber token (asked anew once after a 401). Answers the JSON
   * body, or undefined after a failure, which `snapshot.error` and an `error` event tell (a 404 is no
   * failure: another tab deleted it first).
   */
  async request<T = unknown>(method: string, path: string, init: { body?: unknown; keepalive?: boolean } = {}): Promise<T | undefined> {
    const doFetch = this.options.fetch ?? globalThis.fetch.bind(globalThis);
    try {
      for (let attempt = 0; ; attempt++) {
        const token = await this.client.token();
        const res = await doFetch(`${this.client.base}${path}`, {
          method,
          keepalive: init.keepalive,
          headers: { authorization: `Bearer ${token}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
        });
        if (res.status === 401 && attempt === 0 && typeof this.options.token === 'function') continue;
        const text = await res.text();
        const json = text ? (JSON.parse(text) as { message?: string }) : undefined;
        if (res.status === 404 && method !== 'GET') return undefined;
        if (!res.ok) throw new Error(json?.message ?? `HTTP ${res.status}`);
        if (this.error !== null) {
          this.error = null;
          this.changed();
        }
        return json as T;
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.error = e.message;
      this.changed();
      this.emit('error', e);
      return undefined;
    }
  }
}

/** Shorthand for `new HeraldInbox(options).start()`. */
export function createInbox(options: InboxOptions): HeraldInbox {
  return new HeraldInbox(options).start();
}
