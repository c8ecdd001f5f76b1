// Types of herald-pusher.js, for TypeScript apps (and Herald's own tests).

/** Where the newest id of each channel is kept across page loads (e.g. sessionStorage). */
export interface HeraldReplayOptions {
  storage?: Pick<Storage, 'getItem' | 'setItem'>;
  /** Prefix of the storage keys (default 'herald:pusher:'). */
  prefix?: string;
}

/**
 * Makes a pusher-js 8 client resume each channel from the newest Herald id it saw, whenever it
 * (re)subscribes. `pusher` is a pusher-js `Pusher` (or Echo's `echo.connector.pusher`).
 */
export function heraldReplay(pusher: unknown, options?: HeraldReplayOptions): { lastIds: Map<string, number> };
