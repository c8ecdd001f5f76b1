// pusher-js in Chromium (its browser bundle, from node_modules) against Herald: public, private and
// presence channels, and Herald's replay plugin across a dropped connection.
import { projectFile } from '../../src/paths.js';
import { browserTest } from '../support/browser.js';
import { startProxy } from '../support/proxy.js';
import { authServer, portOf, pusherApps, pusherClient, subscribed } from '../support/pusher.js';
import { startServer } from '../support/server.js';

browserTest('pusher-js in Chromium: public, private and presence channels, and replay after a dropped connection', async (t, browser) => {
  const s = await startServer({ env: { HERALD_PUSHER_APPS: pusherApps } });
  t.teardown(() => s.close());
  const proxy = await startProxy([portOf(s)]);
  t.teardown(() => proxy.close());
  const js = 'text/javascript; charset=utf-8';
  const app = await authServer(s, undefined, {
    '/': [projectFile('test/browser/pusher-page/index.html'), 'text/html; charset=utf-8'],
    '/page.js': [projectFile('test/browser/pusher-page/page.js'), js],
    '/pusher.js': [projectFile('node_modules/pusher-js/dist/web/pusher.js'), js],
    '/herald-pusher.js': [projectFile('public/herald-pusher.js'), js],
  });
  const page = await browser.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${app.url}/?port=${portOf(proxy)}`);
  await page.waitForFunction(() => (window as unknown as { subscribed: number }).subscribed === 3, undefined, { timeout: 10_000 });

  const events = () => page.evaluate(() => (window as unknown as { events: { channel: string; event: string; data: unknown }[] }).events);
  await app.sdk.trigger('news', 'n', { n: 1 });
  await app.sdk.trigger('private-orders.1', 'shipped', 'as a string');
  await app.sdk.trigger('presence-room.1', 'said', { text: 'é' });
  await page.waitForFunction(() => (window as unknown as { events: unknown[] }).events.length === 3, undefined, { timeout: 10_000 });
  t.same(await events(), [
    { channel: 'news', event: 'n', data: { n: 1 } },
    { channel: 'private-orders.1', event: 'shipped', data: 'as a string' },
    { channel: 'presence-room.1', event: 'said', data: { text: 'é' } },
  ]);

  // Another member, from Node: the page sees two.
  const bob = await pusherClient(s, { auth: app, user: 'bob' });
  await subscribed(bob, 'presence-room.1');
  await page.waitForFunction(() => (window as unknown as { pusher: { channel(n: string): { members: { count: number } } } }).pusher.channel('presence-room.1').members.count === 2);

  proxy.hold();
  proxy.cut();
  await page.waitForFunction(() => (window as unknown as { pusher: { connection: { state: string } } }).pusher.connection.state !== 'connected');
  for (const n of [2, 3]) await app.sdk.trigger('news', 'n', { n });
  proxy.release();
  await page.waitForFunction(() => (window as unknown as { pusher: { connection: { state: string } } }).pusher.connection.state === 'connected', undefined, {
    timeout: 20_000,
  });
  await page.waitForFunction(() => (window as unknown as { subscribed: number }).subscribed === 6, undefined, { timeout: 10_000 });
  await app.sdk.trigger('news', 'n', { n: 4 });
  await page.waitForFunction(() => (window as unknown as { events: { channel: string }[] }).events.filter((e) => e.channel === 'news').length >= 4, undefined, {
    timeout: 10_000,
  });
  const news = (await events()).filter((e) => e.channel === 'news').map((e) => (e.data as { n: number }).n);
  t.same(news, [1, 2, 3, 4], 'what was published while the connection was down is replayed, once, in order');
  t.same(pageErrors, []);
});
