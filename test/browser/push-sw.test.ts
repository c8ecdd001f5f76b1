// The service worker (public/sw.js) in a real headless Chromium: a push driven through the DevTools
// protocol (ServiceWorker.deliverPushMessage) with the exact payload Herald's push sender encrypted
// for a device, then the click path, against a real Herald on 127.0.0.1 (a secure context).
import type { CDPSession, Worker } from 'playwright-core';
import t from 'tap';
import { browserTest } from '../support/browser.js';
import { PushService } from '../support/push-service.js';
import { startServer } from '../support/server.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';

const wait = { timeout: 15_000 };

interface ShownNotification {
  title: string;
  body: string;
  tag: string;
  data: { ids: number[]; url: string };
}

/** The little of the service worker scope (lib "webworker") the click needs: the test compiles against lib "dom". */
interface WorkerScope {
  registration: { getNotifications(filter?: { tag: string }): Promise<unknown[]>; showNotification(...args: unknown[]): Promise<void> };
  shows?: Promise<void>[];
  addEventListener(type: 'error', fn: (e: { message: string }) => void): void;
  dispatchEvent(e: unknown): boolean;
  NotificationEvent: new (type: string, init: { notification: unknown }) => unknown;
  WindowClient: { prototype: { focus(): Promise<unknown>; url: string } };
  focused?: string[];
}

/**
 * Clicks the shown notification `tag` in the worker. No DevTools command clicks a system notification,
 * so this dispatches a script-made `notificationclick` carrying the real notification at the worker:
 * its handler runs as on a click, but Chromium treats the event as untrusted (its waitUntil throws;
 * the handler's promises run all the same) and gives it no window-interaction allowance, so
 * `focus()` is refused, as after a real click whose allowance has run out. With `recordFocus`,
 * WindowClient.focus records the tab and resolves instead, so the handler goes on to navigate it.
 * Resolves with the errors the worker reported.
 */
async function click(worker: Worker, tag: string, recordFocus: boolean): Promise<string[]> {
  return worker.evaluate(
    async ({ tag, recordFocus }) => {
      const sw = self as unknown as WorkerScope;
      const [n] = await sw.registration.getNotifications({ tag });
      if (!n) throw new Error(`no notification ${tag} shown`);
      if (recordFocus) {
        sw.focused = [];
        sw.WindowClient.prototype.focus = function () {
          sw.focused!.push(this.url);
          return Promise.resolve(this);
        };
      }
      const errors: string[] = [];
      sw.addEventListener('error', (e) => errors.push(e.message));
      sw.dispatchEvent(new sw.NotificationEvent('notificationclick', { notification: n }));
      return errors;
    },
    { tag, recordFocus },
  );
}

/**
 * Makes the worker keep the promise of each showNotification call (still calling Chromium's own), so
 * the test reads the shown notifications only once they are: a getNotifications() racing a display
 * in progress can make Chromium drop the new one from its list for good (seen here about once in four
 * runs while polling), which no user does.
 */
function observeShows(worker: Worker): Promise<void> {
  return worker.evaluate(() => {
    const sw = self as unknown as WorkerScope;
    const reg = sw.registration;
    const show = reg.showNotification.bind(reg);
    sw.shows = [];
    reg.showNotification = (...args) => {
      const shown = show(...args);
      sw.shows!.push(shown);
      return shown;
    };
  });
}

/** Waits until the worker has called showNotification `n` times in all and each call has resolved. */
function shownTimes(worker: Worker, n: number): Promise<void> {
  return worker.evaluate(async (n) => {
    const sw = self as unknown as WorkerScope;
    const deadline = Date.now() + 15_000;
    while (sw.shows!.length < n) {
      if (Date.now() > deadline) throw new Error(`showNotification called ${sw.shows!.length} times, not ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all(sw.shows!);
  }, n);
}

/** The id of the one service worker registration DevTools reports for `origin`, once it is activated. */
function activatedRegistration(cdp: CDPSession, origin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no activated service worker reported over CDP')), wait.timeout);
    cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
      const v = versions.find((v) => v.status === 'activated' && v.scriptURL === `${origin}/sw.js`);
      if (!v) return;
      clearTimeout(timer);
      resolve(v.registrationId);
    });
  });
}

t.setTimeout(120_000);

browserTest('a push shows a notification; its click marks it read and takes the open tab to its url', async (t, browser) => {
  const s = await startServer({ env: { HERALD_PUSH_ALLOW_LOOPBACK_HTTP: 'true', HERALD_PUSH_POLL_MS: '100' } });
  t.teardown(() => s.close());
  const vapidKey = (await s.request('GET', '/push/vapid-public-key', null)).body.publicKey as string;
  // Chromium's own subscription would point at its vendor's push service, out of reach here: the
  // payload Herald sends is taken from a loopback push service that decrypts it, then delivered to
  // the worker over CDP, as the vendor's service would deliver it.
  const pushService = new PushService(() => vapidKey);
  await pushService.start();
  t.teardown(() => pushService.close());
  t.equal((await s.request('POST', '/push/subscriptions', 'alice', pushService.device('chromium').subscription)).status, 201);

  const { context } = browser;
  await context.grantPermissions(['notifications'], { origin: s.url });
  const page = await context.newPage();
  page.on('pageerror', (err) => t.fail(`error in the page: ${err.message}`));
  const cdp = await context.newCDPSession(page);
  const registration = activatedRegistration(cdp, s.url);
  await cdp.send('ServiceWorker.enable');

  // The inbox page (no session: it asks for a token and opens no stream, so alice stays offline).
  await page.goto(`${s.url}/`);
  await page.evaluate(async (token) => {
    await navigator.serviceWorker.register('/sw.js');
    const reg = await navigator.serviceWorker.ready;
    reg.active!.postMessage({ type: 'herald-token', token });
  }, tokenFor('alice'));
  const registrationId = await registration;
  const worker = context.serviceWorkers().find((w) => w.url() === `${s.url}/sw.js`);
  if (!worker) throw new Error('playwright sees no service worker');
  await observeShows(worker);

  /** Publishes to alice, and delivers to the worker the payload Herald pushed for it. */
  const pushed = async (body: Record<string, unknown>): Promise<number> => {
    const published = await s.publish({ user: 'alice', ...body });
    if (published.status !== 201) throw new Error(`publish answered ${published.status}`);
    const id = published.body.id as number;
    await pushService.waitFor((p) => p.some((x) => x.payload.id === id));
    const payload = pushService.pushes.find((x) => x.payload.id === id)!.payload;
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: s.url, registrationId, data: JSON.stringify(payload) });
    return id;
  };
  const shown = async (): Promise<ShownNotification[]> =>
    page.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
    });
  const readOnServer = async (id: number): Promise<boolean> => {
    const { body } = await s.request('GET', '/notifications', 'alice');
    return (body.items as { id: number; read: boolean }[]).find((n) => n.id === id)!.read;
  };

  const first = await pushed({ title: 'Export ready', body: 'report.csv', data: { url: '/?export=41' } });
  await shownTimes(worker, 1);
  t.same(await shown(), [{ title: 'Export ready', body: 'report.csv', tag: `herald-${first}`, data: { ids: [first], url: `${s.url}/?export=41` } }]);

  // Chromium refuses this click's focus(): the notification is read all the same.
  const errors = await click(worker, `herald-${first}`, false);
  t.match(errors, [/Can not call waitUntil on a script constructed ExtendableEvent/], 'the click is a script-made event');
  await waitUntil('the first notification read on the server', () => readOnServer(first));
  t.same(await shown(), [], 'the click closed it');
  t.equal(page.url(), `${s.url}/`, 'the refused focus took the tab nowhere');

  const second = await pushed({ title: 'Second export', data: { url: '/?export=42' } });
  await shownTimes(worker, 2);
  t.same((await shown()).map((n) => n.tag), [`herald-${second}`]);
  t.equal(await readOnServer(second), false);
  await click(worker, `herald-${second}`, true);
  await page.waitForURL(`${s.url}/?export=42`, wait);
  t.same(await worker.evaluate(() => (self as unknown as WorkerScope).focused), [`${s.url}/`], 'the open tab was focused, then taken to the url');
  await waitUntil('the second notification read on the server', () => readOnServer(second));
  t.same(await shown(), []);
});
