// Types for herald-client.js, for TypeScript apps that bundle it (and for Herald's own tests).

export type HeraldState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed';

export interface HeraldNotification {
  id: number;
  title: string;
  body: string | null;
  data: Record<string, unknown> | null;
  type: string | null;
  topic: string | null;
  broadcast: boolean;
  createdAt: string;
}

export type HeraldReadEvent = { ids: number[] } | { all: true; upTo: number };

export interface HeraldEvents {
  notification: (n: HeraldNotification, event: MessageEvent) => void;
  read: (e: HeraldReadEvent, event: MessageEvent) => void;
  deleted: (e: { id: number }, event: MessageEvent) => void;
  reload: (e: { reason: 'catchup-limit' | 'ahead-of-server'; lastId: number }, event: MessageEvent) => void;
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

export interface HeraldOptions {
  /** Herald's base URL; '' (the default) is the page's own origin. */
  url?: string;
  /** A subscriber JWT, or a function returning one, called again whenever the stream is reopened. */
  token: string | (() => string | Promise<string>);
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

export class HeraldClient {
  constructor(options: HeraldOptions);
  readonly state: HeraldState;
  /** The stream's last id, as the latest event received carried it; the stream resumes after it. */
  readonly lastEventId: number | undefined;
  on<K extends keyof HeraldEvents>(type: K, listener: HeraldEvents[K]): () => void;
  connect(): this;
  close(): void;
}
