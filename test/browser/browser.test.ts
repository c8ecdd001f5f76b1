// End to end in a real headless Chromium: the demo inbox page and herald-client.js against a real
// Herald process (the built server, as `npm start` runs it) with a real SQLite file.
import { rmSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { freePort, sleep, tempDir } from '../../support/util.js';
import { chromiumMissing, launchBrowser, screenshot } from '../support/browser.js';
import type { Json } from '../support/http.js';
import { startProxy } from '../support/proxy.js';
import { spawnServer, startServer, type Child } from '../support/server.js';
import { jwtSecret, publisherKey, tokenFor } from '../support/tokens.js';

const wait = { timeout: 15_000 };

/** What the page exposes as `window.heraldDemo` (public/app.js). */
interface DemoWindow {
  heraldDemo: {
    received: number[];
    client: { on(type: string, fn: (...args: unknown[]) => void): () => void };
  };
  states?: string[];
  marker?: number;
}

async function publish(base: string, body: Record<string, unknown>): Promise<Json> {
  const res = await fetch(`${base}/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** Marks everything `user` has read, through a demo session: the subtests share one server and its broadcasts. */
async function markAllReadAs(base: string, user: string): Promise<void> {
  const res = await fetch(`${base}/demo/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) });
  const { token } = (await res.json()) as Json;
  await fetch(`${base}/notifications/read-all`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
}

/** Opens the inbox as `user` in a new tab (closed when `t` ends) and waits until it is live. */
async function openInbox(t: Test, context: BrowserContext, base: string, user: string, { fresh = true } = {}): Promise<Page> {
  // Each badge starts at 0 unless the test set up unread ones itself.
  if (fresh) await markAllReadAs(base, user);
  const page = await context.newPage();
  t.teardown(() => page.close());
  page.on('pageerror', (err) => t.fail(`error in the page: ${err.message}`));
  await page.goto(`${base}/?user=${user}`);
  await connected(page);
  return page;
}

const connected = (page: Page) => page.locator('#conn[data-state="connected"]').waitFor(wait);

/** Waits until the bell shows `n` unread (no badge at all for 0). */
async function badgeIs(page: Page, n: number): Promise<void> {
  try {
    await page.waitForFunction(
      (n) => {
        const badge = document.getElementById('badge')!;
        return n === 0 ? badge.hidden : !badge.hidden && badge.textContent === String(n);
      },
      n,
      wait,
    );
  } catch (err) {
    const shown = await page.locator('#badge').evaluate((b) => ((b as HTMLElement).hidden ? 'no badge' : b.textContent));
    throw new Error(`the badge shows ${shown}, not ${n}: ${(err as Error).message}`);
  }
}

const received = (page: Page) => page.evaluate(() => (window as unknown as DemoWindow).heraldDemo.received);

async function receivedAtLeast(page: Page, ids: number[]): Promise<void> {
  await page.waitForFunction((ids) => ids.every((id) => (window as unknown as DemoWindow).heraldDemo.received.includes(id)), ids, wait);
}

const toast = (page: Page, title: string) => page.locator('#toasts .toast', { hasText: title });
const item = (page: Page, id: number) => page.locator(`#feed .item[data-id="${id}"]`);

// A real browser and a server restarted under it: on a loaded 2-core machine this file may need
// more than the suite's 120 s per file.
t.setTimeout(300_000);

const missing = chromiumMissing();
if (missing) {
  t.fail(missing);
} else {
  t.test('the browser inbox', async (t) => {
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const { context } = browser;

    // A fixed port and data dir, so the server can be stopped and started again under the page.
    // No secret is configured, as for a newcomer's `npm start`; demo mode is asked for explicitly
    // because the test publishes with its own publisher key, which alone would leave it off.
    const port = await freePort();
    const dataDir = tempDir();
    const env = {
      PORT: String(port),
      HERALD_DATA_DIR: dataDir,
      HERALD_JWT_SECRET: '',
      HERALD_DEMO: 'true',
      HERALD_RETRY_MS: '1000',
      HERALD_SQLITE_SYNC: 'normal',
    };
    let child: Child = await spawnServer(env);
    t.teardown(async () => {
      await child.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const base = child.url;

    t.test('the start banner points at the demo page', async (t) => {
      t.match(child.output(), `Demo inbox: open ${base}/ in a browser`);
    });

    t.test('a published notification shows as a toast and on the bell; the form publishes too', async (t) => {
      const page = await openInbox(t, context, base, 'ann');
      t.equal(await page.locator('#toasts').getAttribute('aria-live'), 'polite', 'toasts are announced');

      const first = await publish(base, { user: 'ann', title: 'Your export is ready', body: 'report.csv is in your downloads' });
      await toast(page, 'Your export is ready').waitFor(wait);
      await badgeIs(page, 1);
      await item(page, first.id).waitFor(wait);

      const deploy = await publish(base, { topic: 'deploys', title: 'v2.3 is live', body: 'Deployed by CI in 42 s' });
      await publish(base, { user: 'someone-else', title: 'Not for ann' });
      await publish(base, { topic: 'elsewhere', title: 'A topic ann did not subscribe to' });
      await toast(page, 'v2.3 is live').waitFor(wait);
      await badgeIs(page, 2);

      await page.getByRole('radio', { name: 'Everyone' }).check();
      await page.getByLabel('Title').fill('Maintenance at 22:00 UTC');
      await page.getByLabel('Title').press('Enter');
      await toast(page, 'Maintenance at 22:00 UTC').waitFor(wait);
      await badgeIs(page, 3);
      t.match(await page.locator('#publish-result').textContent(), /^Sent #\d+/);
      t.equal(await toast(page, 'Not for ann').count(), 0, 'nothing addressed to others');
      t.equal(await toast(page, 'did not subscribe').count(), 0, 'nothing from topics the page did not name');

      const ids = await received(page);
      t.equal(ids.length, 3);
      t.same(
        await page.locator('#feed .item').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.id))),
        [ids[2], deploy.id, first.id],
        'the feed is newest first',
      );

      // Keyboard only: Tab from the top of the page reaches a "Mark read" button, and Enter presses it.
      await page.locator('body').focus();
      let reached = false;
      for (let i = 0; i < 40 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.classList.contains('mark') ?? false);
      }
      t.ok(reached, 'a Mark read button is reachable with Tab');
      await page.keyboard.press('Enter');
      await badgeIs(page, 2);

      await screenshot(page, 'inbox-desktop');
      // A narrow phone: nothing wider than the screen, the bell and the send button in view.
      await page.setViewportSize({ width: 360, height: 740 });
      const layout = await page.evaluate(() => {
        const right = (sel: string) => document.querySelector(sel)!.getBoundingClientRect().right;
        return { scrollWidth: document.documentElement.scrollWidth, bell: right('#bell'), send: right('#send'), width: innerWidth };
      });
      t.ok(layout.scrollWidth <= layout.width, `no sideways scrolling (${layout.scrollWidth} <= ${layout.width})`);
      t.ok(layout.bell <= layout.width && layout.send <= layout.width, 'bell and send button fit');
      await screenshot(page, 'inbox-phone');
      await page.locator('#publish').scrollIntoViewIfNeeded();
      await screenshot(page, 'inbox-phone-form');
    });

    t.test('marking read lowers the badge in this tab and in another', async (t) => {
      const tab1 = await openInbox(t, context, base, 'bo');
      const tab2 = await openInbox(t, context, base, 'bo');
      const [n1, n2, n3] = [await publish(base, { user: 'bo', title: 'one' }), await publish(base, { user: 'bo', title: 'two' }), await publish(base, { user: 'bo', title: 'three' })];
      await badgeIs(tab1, 3);
      await badgeIs(tab2, 3);

      await item(tab1, n2.id).getByRole('button', { name: 'Mark “two” read' }).click();
      await badgeIs(tab1, 2);
      await badgeIs(tab2, 2);
      await tab2.waitForFunction((id) => !document.querySelector(`[data-id="${id}"]`)!.classList.contains('unread'), n2.id, wait);
      t.ok(await item(tab2, n1.id).evaluate((e) => e.classList.contains('unread')), 'the others stay unread');

      await tab2.getByRole('button', { name: 'Mark all read' }).click();
      await badgeIs(tab2, 0);
      await badgeIs(tab1, 0);
      t.equal(await tab1.locator('#feed .item.unread').count(), 0, 'every item in the other tab shows read');

      await item(tab1, n3.id).getByRole('button', { name: 'Delete “three”' }).click();
      await item(tab1, n3.id).waitFor({ state: 'detached', ...wait });
      await item(tab2, n3.id).waitFor({ state: 'detached', ...wait });
      t.equal(await item(tab2, n1.id).count(), 1, 'the others stay');
    });

    t.test('history loads page by page, and the bell filters to unread', async (t) => {
      await markAllReadAs(base, 'em');
      const ids: number[] = [];
      for (let i = 1; i <= 25; i++) ids.push((await publish(base, { user: 'em', title: `history ${i}` })).id);
      const page = await openInbox(t, context, base, 'em', { fresh: false });
      const shown = () => page.locator('#feed .item').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.id)));
      await page.locator('#feed .item').nth(19).waitFor(wait);
      t.same(await shown(), ids.slice(5).reverse(), 'the newest 20 first');
      await page.getByRole('button', { name: 'Load more' }).click();
      await page.locator('#feed .item').nth(24).waitFor(wait);
      const all = await shown();
      t.same(all.slice(0, 25), [...ids].reverse(), 'then the older ones');
      t.ok(all.every((id, i) => i === 0 || id < all[i - 1]!), 'newest first throughout');

      await badgeIs(page, 25);
      await item(page, ids[24]!).getByRole('button', { name: 'Mark “history 25” read' }).click();
      await badgeIs(page, 24);
      await page.locator('#bell').click();
      t.equal(await page.locator('#bell').getAttribute('aria-pressed'), 'true');
      await item(page, ids[24]!).waitFor({ state: 'detached', ...wait });
      t.equal(await page.locator('#feed .item.unread').count(), await page.locator('#feed .item').count(), 'only unread ones');
      await page.locator('#bell').click();
      await item(page, ids[24]!).waitFor(wait);
    });

    t.test('the page rides out a server restart and gets what it missed, once each', async (t) => {
      const page = await openInbox(t, context, base, 'cy');
      const before = await publish(base, { user: 'cy', title: 'before the restart' });
      await receivedAtLeast(page, [before.id]);
      await page.evaluate(() => {
        const w = window as unknown as DemoWindow;
        w.marker = 1;
        w.states = [];
        w.heraldDemo.client.on('state', (s) => w.states!.push(String(s)));
      });

      await child.stop();
      await page.locator('#conn:not([data-state="connected"])').waitFor(wait);

      // While this server is down, another Herald on the same data dir (as a second instance of a
      // deployment would) takes two publishes the page cannot hear about live.
      const other = await startServer({ dataDir, env: { HERALD_JWT_SECRET: jwtSecret } });
      const whileDown = [
        await other.publish({ user: 'cy', title: 'while down 1' }),
        await other.publish({ broadcast: true, title: 'while down 2' }),
      ].map((r) => r.body.id as number);
      await other.close();

      child = await spawnServer(env);
      t.equal(child.url, base, 'back on the same address');
      const after = await publish(base, { user: 'cy', title: 'just after the restart' });

      await receivedAtLeast(page, [...whileDown, after.id]);
      await connected(page);
      t.same(await received(page), [before.id, ...whileDown, after.id], 'every missed notification, in order, none doubled');
      for (const title of ['while down 1', 'while down 2', 'just after the restart']) {
        await toast(page, title).waitFor(wait);
        t.equal(await page.locator('#feed .item', { hasText: title }).count(), 1, `"${title}" once in the feed`);
      }
      await badgeIs(page, 4);
      const w = await page.evaluate(() => {
        const w = window as unknown as DemoWindow;
        return { marker: w.marker, states: w.states };
      });
      t.equal(w.marker, 1, 'the page reconnected by itself, without reloading');
      t.ok(w.states!.includes('reconnecting') || w.states!.includes('offline'), `the indicator showed the outage (${w.states!.join(' → ')})`);
      t.equal(w.states!.at(-1), 'connected');
    });

    t.test('a page reload resumes from the last id kept in sessionStorage', async (t) => {
      const page = await openInbox(t, context, base, 'di');
      const seen = await publish(base, { user: 'di', title: 'seen before leaving' });
      await receivedAtLeast(page, [seen.id]);
      t.equal(await page.evaluate(() => sessionStorage.getItem('herald:last-event-id:di')), String(seen.id));

      await page.goto('about:blank');
      const missed = await publish(base, { user: 'di', title: 'sent while the page was away' });
      const streams: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/events?')) streams.push(r.url());
      });
      await page.goto(`${base}/?user=di`);
      await receivedAtLeast(page, [missed.id]);
      t.match(new URL(streams[0]!).searchParams.get('lastEventId'), String(seen.id), 'the new stream resumes after the last id seen');
      t.same(await received(page), [missed.id], 'the missed one arrives on the stream (and only it)');
      await toast(page, 'sent while the page was away').waitFor(wait);
      await badgeIs(page, 2);
    });

    t.test('a page that has received nothing yet loses its connection, and gets what was published meanwhile, once', async (t) => {
      // Through a proxy that can cut the page's connections; the newest id is someone else's, so the
      // page's resume point is not one of its own notifications.
      const proxy = await startProxy([port]);
      t.teardown(() => proxy.close());
      await publish(base, { user: 'someone-else', title: 'before fi connects' });
      const page = await openInbox(t, context, proxy.url, 'fi');
      const historyLoads: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/notifications?')) historyLoads.push(r.url());
      });

      // The connection drops; the browser's reconnect waits at the proxy until the publish is done.
      proxy.hold();
      proxy.cut();
      await page.locator('#conn:not([data-state="connected"])').waitFor(wait);
      const missed = await publish(base, { user: 'fi', title: 'published while fi was cut off' });
      proxy.release();

      await toast(page, 'published while fi was cut off').waitFor(wait);
      await connected(page);
      await sleep(300);
      t.same(await received(page), [missed.id], 'as a live event, once');
      t.equal(await item(page, missed.id).count(), 1, 'once in the feed');
      t.same(historyLoads, [], 'no history reload was needed to fill the gap');
      await badgeIs(page, 1);
    });

    t.test('back online, a page that has received nothing yet gets what was published while it was offline', async (t) => {
      const proxy = await startProxy([port]);
      t.teardown(() => proxy.close());
      await publish(base, { user: 'someone-else', title: 'before gil connects' });
      const page = await openInbox(t, context, proxy.url, 'gil');

      // Offline, and the connection gone with it (the browser's offline mode leaves open ones be).
      await context.setOffline(true);
      t.teardown(() => context.setOffline(false));
      proxy.cut();
      await page.locator('#conn[data-state="offline"]').waitFor(wait);
      const missed = await publish(base, { user: 'gil', title: 'published while gil was offline' });
      await context.setOffline(false);

      await toast(page, 'published while gil was offline').waitFor(wait);
      await connected(page);
      await sleep(300);
      t.same(await received(page), [missed.id], 'as a live event, once');
    });

    t.test('the resume point is kept in sessionStorage from the first event of any kind, before any notification', async (t) => {
      const head = await publish(base, { user: 'someone-else', title: 'before hal connects' });
      const page = await openInbox(t, context, base, 'hal');
      const stored = () => page.evaluate(() => sessionStorage.getItem('herald:last-event-id:hal'));
      t.equal(await stored(), null, 'nothing known to the page yet');
      // Another tab marks everything read: the page's first event, a `read`.
      await markAllReadAs(base, 'hal');
      await page.waitForFunction(() => sessionStorage.getItem('herald:last-event-id:hal') !== null, undefined, wait);
      t.equal(await stored(), String(head.id), 'the id the stream started from');

      await page.goto('about:blank');
      const missed = await publish(base, { user: 'hal', title: 'sent before hal came back' });
      await page.goto(`${base}/?user=hal`);
      await receivedAtLeast(page, [missed.id]);
      t.same(await received(page), [missed.id], 'a reloaded page resumes from it');
    });
  });

  t.test('with demo mode off the page asks for a token, then works the same', async (t) => {
    const s = await startServer();
    const browser = await launchBrowser();
    t.teardown(async () => {
      await browser.close();
      await s.close();
    });
    const page = await browser.context.newPage();
    await page.goto(`${s.url}/`);
    await page.getByRole('heading', { name: 'Demo mode is off' }).waitFor(wait);
    t.ok(await page.locator('#compose').isHidden(), 'no publish form without demo mode');
    await page.getByLabel('Subscriber token').fill(tokenFor('eve', { topics: ['ops', 'org:*'] }));
    await page.getByRole('button', { name: 'Open inbox' }).click();
    await connected(page);
    await s.publish({ user: 'eve', title: 'Hello eve' });
    await toast(page, 'Hello eve').waitFor(wait);
    await badgeIs(page, 1);
    t.match(await page.locator('#who').textContent(), /Signed in as eve · topics: #ops$/, "the token's topics by name (a prefix names none)");
    await s.publish({ topic: 'ops', title: 'Ops for eve' });
    await toast(page, 'Ops for eve').waitFor(wait);
    await badgeIs(page, 2);
  });
}
