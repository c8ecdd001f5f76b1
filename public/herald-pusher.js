// Herald replay for pusher-js (8.x), and so for Laravel Echo's Pusher connector: an ES module.
// Herald writes each notification's id beside event/channel/data (`herald_id`, which pusher-js
// ignores); this remembers the newest one of each channel and sends it as `herald_last_id` whenever
// pusher-js (re)subscribes, so that Herald replays what the channel had meanwhile, then goes live:
// no gap, no duplicate. Other Pusher servers ignore the extra field.
//
//   import { heraldReplay } from 'https://herald.example.com/herald-pusher.js';
//   const pusher = new Pusher(key, { wsHost: 'herald.example.com', ... });
//   heraldReplay(pusher);                      // or heraldReplay(echo.connector.pusher)
//
// It hooks pusher-js's `send_event` and its transport's raw messages (pusher-js drops unknown fields
// when it decodes a message), which pusher-js 8 has; a later major version may need this file updated.

/**
 * @param {any} pusher A pusher-js `Pusher` instance.
 * @param {{ storage?: Pick<Storage, 'getItem' | 'setItem'>, prefix?: string }} [options] Where to keep
 *   the ids across page loads (e.g. sessionStorage); in memory only by default.
 * @returns {{ lastIds: Map<string, number> }} The newest id seen on each channel.
 */
export function heraldReplay(pusher, options = {}) {
  const { storage, prefix = 'herald:pusher:' } = options;
  /** @type {Map<string, number>} */
  const lastIds = new Map();
  const lastOf = (/** @type {string} */ channel) => {
    const kept = lastIds.get(channel) ?? Number(storage?.getItem(prefix + channel) ?? NaN);
    return Number.isSafeInteger(kept) ? kept : undefined;
  };

  const send = pusher.send_event.bind(pusher);
  pusher.send_event = (/** @type {string} */ event, /** @type {any} */ data, /** @type {string=} */ channel) => {
    const last = event === 'pusher:subscribe' && data ? lastOf(data.channel) : undefined;
    return send(event, last === undefined ? data : { ...data, herald_last_id: last }, channel);
  };

  const onMessage = (/** @type {{ data: string }} */ message) => {
    let msg;
    try {
      msg = JSON.parse(message.data);
    } catch {
      return;
    }
    if (typeof msg?.channel !== 'string' || !Number.isSafeInteger(msg.herald_id)) return;
    lastIds.set(msg.channel, msg.herald_id);
    storage?.setItem(prefix + msg.channel, String(msg.herald_id));
  };
  // Each connection has a transport of its own: watch each one as it connects.
  const watch = () => pusher.connection.connection?.transport?.bind('message', onMessage);
  pusher.connection.bind('connected', watch);
  if (pusher.connection.state === 'connected') watch();
  return { lastIds };
}
