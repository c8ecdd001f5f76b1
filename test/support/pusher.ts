// The Pusher side of a test: the official server SDK pointed at Herald, pusher-js and Laravel Echo
// clients in this process, and a tiny app server whose auth endpoint signs with the SDK.
import { readFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import Pusher from 'pusher';
import pusherJsModule from 'pusher-js';
import t from 'tap';
import type { Server } from './server.js';

/**
 * pusher-js's class. Its types declare an ES default export, which in an ES module importing this
 * CommonJS package would be `.default`; its Node build sets `module.exports` to the class itself.
 */
export const PusherJs = pusherJsModule as unknown as typeof pusherJsModule.default;
export type PusherJs = InstanceType<typeof PusherJs>;
/** The same class, typed as laravel-echo's `Pusher` option expects it (the same mismatch, the other way). */
export const PusherForEcho = pusherJsModule;

export const app1 = { id: 'app1', key: 'key1', secret: 'secret-one-0123456789' };
export const app2 = { id: 'app2', key: 'key2', secret: 'secret-two-0123456789' };
/** HERALD_PUSHER_APPS for both: app1 allows client events. */
export const pusherApps = `${app1.id}:${app1.key}:${app1.secret}:client-events,${app2.id}:${app2.key}:${app2.secret}`;

export const portOf = (server: Server | { url: string }) => Number(new URL(server.url).port);

/** The server SDK, as a Laravel or Node app would configure it against Herald. */
export function serverSdk(server: { url: string }, app = app1): Pusher {
  return new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(portOf(server)), useTLS: false });
}

/**
 * The app's own server: `POST /broadcasting/auth` signs with the SDK's `authorizeChannel`, as
 * Laravel's does. Presence members are the `user` form field, with `{ name }` as their info. `files`
 * (URL path to file and content type) are served too: a browser test's page and scripts.
 */
export async function authServer(server: { url: string }, app = app1, files: Record<string, [string, string]> = {}): Promise<{ url: string; sdk: Pusher }> {
  const sdk = serverSdk(server, app);
  const http: HttpServer = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = files[path];
    if (file) {
      res.writeHead(200, { 'content-type': file[1] }).end(readFileSync(file[0]));
      return;
    }
    if (req.method !== 'POST' || path !== '/broadcasting/auth') {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const channel = form.get('channel_name') ?? '';
      const user = form.get('user') ?? 'anonymous';
      // The app decides who may do what: here, nobody may join "private-forbidden".
      if (channel === 'private-forbidden') {
        res.writeHead(403).end();
        return;
      }
      const signed = channel.startsWith('presence-')
        ? sdk.authorizeChannel(form.get('socket_id')!, channel, { user_id: user, user_info: { name: user } })
        : sdk.authorizeChannel(form.get('socket_id')!, channel);
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' }).end(JSON.stringify(signed));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => http.close(() => resolve())));
  const address = http.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { url: `http://127.0.0.1:${address.port}`, sdk };
}

/** pusher-js options for Herald on loopback: WebSocket only, no stats, no TLS. */
export function clientOptions(server: { url: string }, auth?: { url: string }, user?: string) {
  return {
    wsHost: '127.0.0.1',
    wsPort: portOf(server),
    forceTLS: false,
    enabledTransports: ['ws' as const],
    cluster: 'mt1',
    disableStats: true,
    ...(auth && { channelAuthorization: { endpoint: `${auth.url}/broadcasting/auth`, transport: 'ajax' as const, params: { user } } }),
  };
}

/** A pusher-js client, connected; disconnected at teardown. */
export async function pusherClient(server: { url: string }, opts: { key?: string; auth?: { url: string }; user?: string } = {}): Promise<PusherJs> {
  const client = new PusherJs(opts.key ?? app1.key, clientOptions(server, opts.auth, opts.user));
  t.teardown(() => client.disconnect());
  await new Promise<void>((resolve, reject) => {
    client.connection.bind('connected', () => resolve());
    client.connection.bind('failed', () => reject(new Error('pusher-js could not connect')));
  });
  return client;
}

/** Subscribes and resolves once Herald confirmed it; rejects on a subscription error. */
export function subscribed(client: PusherJs, name: string): Promise<ReturnType<PusherJs['subscribe']>> {
  const channel = client.subscribe(name);
  return new Promise((resolve, reject) => {
    channel.bind('pusher:subscription_succeeded', () => resolve(channel));
    channel.bind('pusher:subscription_error', (e: unknown) => reject(new Error(`subscription error: ${JSON.stringify(e)}`)));
  });
}
