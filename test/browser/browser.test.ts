// End to end in a real headless Chromium: the demo page and its <herald-inbox> (packages/client, as
// Herald serves it built) against a real Herald process (the built server, as `npm start` runs it)
// with a real SQLite file. Screenshots go to artifacts/.
import { rmSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { freePort, sleep, tempDir } from '../../support/util.js';
import { browserTest, screenshot } from '../support/browser.js';
import type { Json } from '../support/http.js';
import { startProxy } from '../support/proxy.js';
import { spawnServer, startServer, type Child } from '../support/server.js';
import { jwtSecret, publisherKey, tokenFor } from '../support/tokens.js';

const wait = { timeout: 15_000 };

/** What the page exposes as `window.heraldDemo` (public/app.js). */
interface DemoWindow {
  heraldDemo: {
    received: number[];
    inbox: HTMLElement & { store: { client: { on(type: string, fn: (...args: unknown[]) => void): () => void } } };
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

async function tokenOf(base: string, user: string): Promise<string> {
  const res = await fetch(`${base}/demo/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) });
  return ((await res.json()) as Json).token;
}

/** Marks everything `user` has read, through a demo session: the subtests share one server and its broadcasts. */
async function markAllReadAs(base: string, user: string): Promise<void> {
  await fetch(`${base}/notifications/read-all`, { method: 'POST', headers: { authorization: `Bearer ${await tokenOf(base, user)}` } });
}

/** Opens the demo page as `user` in a new tab (closed when `t` ends) and waits until its inbox is live. */
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

const connected = (page: Page) => page.locator('herald-inbox[data-state="connected"]').waitFor(wait);
const bell = (page: Page) => page.locator('herald-inbox .bell');
const popover = (page: Page) => page.locator('herald-inbox .popover');

/** Waits until the bell shows `n` unread (no badge at all for 0), and says it once in its name. */
async function badgeIs(page: Page, n: number): Promise<void> {
  try {
    await page.waitForFunction(
      (n) => {
        const root = document.querySelector('herald-inbox')!.shadowRoot!;
        const badge = root.querySelector<HTMLElement>('.badge')!;
        const label = root.querySelector('.bell')!.getAttribute('aria-label');
        return n === 0 ? badge.hidden && label === 'Notifications' : !badge.hidden && badge.textContent === String(n) && label === `Notifications, ${n} unread`;
      },
      n,
      wait,
    );
  } catch (err) {
    const shown = await page.locator('herald-inbox .badge').evaluate((b) => ((b as HTMLElement).hidden ? 'no badge' : b.textContent));
    throw new Error(`the badge shows ${shown}, not ${n}: ${(err as Error).message}`);
  }
}

const received = (page: Page) => page.evaluate(() => (window as unknown as DemoWindow).heraldDemo.received);

async function receivedAtLeast(page: Page, ids: number[]): Promise<void> {
  await page.waitForFunction((ids) => ids.every((id) => (window as unknown as DemoWindow).heraldDemo.received.includes(id)), ids, wait);
}

const toast = (page: Page, title: string) => page.locator('herald-inbox .toast', { hasText: title });
const item = (page: Page, id: number) => page.locator(`herald-inbox .item[data-id="${id}"]`);
const shownIds = (page: Page) => page.locator('herald-inbox .item').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.id)));
/** The focused element inside the component's shadow root, described. */
const focused = (page: Page) =>
  page.evaluate(() => {
    const a = document.querySelector('herald-inbox')!.shadowRoot!.activeElement as HTMLElement | null;
    return a ? { cls: a.className, id: a.dataset.id ?? null, label: a.getAttribute('aria-label') } : null;
  });

async function openPopover(page: Page): Promise<void> {
  if (await popover(page).isHidden()) await bell(page).click();
  await popover(page).waitFor(wait);
}

// A real browser and a server restarted under it: on a loaded 2-core machine this file may need
// more than the suite's 120 s per file.
t.setTimeout(300_000);

browserTest('the demo page and <herald-inbox>', async (t, browser) => {
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

  t.test('the start banner points at the demo page, which loads the component from Herald', async (t) => {
    t.match(child.output(), `Demo inbox: open ${base}/ in a browser`);
    const res = await fetch(`${base}/herald-inbox.js`);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type'), /javascript/);
    t.match(await res.text(), /customElements\.define\('herald-inbox'/);
  });

  t.test('a live notification: a toast, the badge and the list; tabs; the form publishes too', async (t) => {
    const page = await openInbox(t, context, base, 'ann');
    t.equal(await page.locator('herald-inbox .toasts').getAttribute('aria-live'), 'polite', 'toasts are announced');
    t.equal(await page.locator('herald-inbox .badge').getAttribute('aria-hidden'), 'true', 'the count is said once, by the bell');

    const first = await publish(base, { user: 'ann', title: 'Your export is ready', body: 'report.csv is in your downloads', type: 'export' });
    await toast(page, 'Your export is ready').waitFor(wait);
    await badgeIs(page, 1);

    const deploy = await publish(base, { topic: 'deploys', title: 'v2.3 is live', body: 'Deployed by CI in 42 s', type: 'deploy' });
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
    await screenshot(page, 'inbox-toasts');

    await openPopover(page);
    const ids = await received(page);
    t.equal(ids.length, 3);
    t.same(await shownIds(page), [ids[2], deploy.id, first.id], 'the list is newest first');
    t.equal(await page.locator('herald-inbox .group').first().textContent(), 'Today', 'grouped by day');
    t.match(await item(page, first.id).getAttribute('aria-label'), /^Unread\. Your export is ready\. report\.csv/, 'unread is said');
    t.match(await item(page, first.id).locator('time').getAttribute('title'), /\d{4}/, 'the exact time on hover');
    t.equal(await item(page, first.id).locator('time').textContent(), 'just now');
    t.equal(await toast(page, 'Your export').count(), 0, 'opening the inbox leaves no toast over it');
    await screenshot(page, 'inbox-desktop');
    await page.emulateMedia({ colorScheme: 'dark' });
    await sleep(300); // past the colour transitions
    await screenshot(page, 'inbox-desktop-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    await item(page, first.id).hover();
    await item(page, first.id).getByRole('button', { name: 'Mark “Your export is ready” read' }).click();
    await badgeIs(page, 2);
    t.match(await item(page, first.id).getAttribute('aria-label'), /^Read\./);
    await page.locator('herald-inbox').getByRole('tab', { name: /Unread/ }).click();
    await item(page, first.id).waitFor({ state: 'detached', ...wait });
    t.same(await shownIds(page), [ids[2], deploy.id], 'the Unread tab shows the unread ones');
    await page.locator('herald-inbox').getByRole('tab', { name: 'All' }).click();
    await item(page, first.id).waitFor(wait);
  });

  t.test('two tabs: read, read-all and delete (with undo) in one show in the other', async (t) => {
    const tab1 = await openInbox(t, context, base, 'bo');
    const tab2 = await openInbox(t, context, base, 'bo');
    const [n1, n2, n3] = [await publish(base, { user: 'bo', title: 'one' }), await publish(base, { user: 'bo', title: 'two' }), await publish(base, { user: 'bo', title: 'three' })];
    await badgeIs(tab1, 3);
    await badgeIs(tab2, 3);
    await openPopover(tab1);
    await openPopover(tab2);

    await item(tab1, n2.id).getByRole('button', { name: 'Mark “two” read' }).click();
    await badgeIs(tab1, 2);
    await badgeIs(tab2, 2);
    await tab2.waitForFunction((id) => !document.querySelector('herald-inbox')!.shadowRoot!.querySelector(`[data-id="${id}"]`)!.classList.contains('unread'), n2.id, wait);
    t.ok(await item(tab2, n1.id).evaluate((e) => e.classList.contains('unread')), 'the others stay unread');

    await tab2.locator('herald-inbox').getByRole('button', { name: 'Mark all read' }).click();
    await badgeIs(tab2, 0);
    await badgeIs(tab1, 0);
    t.equal(await tab1.locator('herald-inbox .item.unread').count(), 0, 'every item in the other tab shows read');

    // Delete, then undo: gone from both tabs at once, back in both, nothing sent to the server.
    await item(tab1, n3.id).getByRole('button', { name: 'Delete “three”' }).click();
    await item(tab1, n3.id).waitFor({ state: 'detached', ...wait });
    await item(tab2, n3.id).waitFor({ state: 'detached', ...wait });
    await tab1.locator('herald-inbox .undo').getByText('Deleted “three”').waitFor(wait);
    await screenshot(tab1, 'inbox-undo');
    await tab1.locator('herald-inbox').getByRole('button', { name: 'Undo' }).click();
    await item(tab1, n3.id).waitFor(wait);
    await item(tab2, n3.id).waitFor(wait);

    // Delete for good: sent when the undo window ends.
    await item(tab1, n3.id).getByRole('button', { name: 'Delete “three”' }).click();
    await item(tab2, n3.id).waitFor({ state: 'detached', ...wait });
    const token = await tokenOf(base, 'bo');
    const history = async () => ((await (await fetch(`${base}/notifications`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json).items.map((n: Json) => n.id);
    t.ok((await history()).includes(n3.id), 'still on the server during the undo window');
    await tab1.locator('herald-inbox .undo').waitFor({ state: 'hidden', timeout: 10_000 });
    const end = Date.now() + 5000;
    while ((await history()).includes(n3.id) && Date.now() < end) await sleep(100);
    t.notOk((await history()).includes(n3.id), 'deleted on the server after it');
    t.equal(await item(tab2, n1.id).count(), 1, 'the others stay');
  });

  t.test('history scrolls in page by page', async (t) => {
    await markAllReadAs(base, 'em');
    const ids: number[] = [];
    for (let i = 1; i <= 25; i++) ids.push((await publish(base, { user: 'em', title: `history ${i}` })).id);
    const page = await openInbox(t, context, base, 'em', { fresh: false });
    await badgeIs(page, 25);
    await openPopover(page);
    await page.locator('herald-inbox .item').nth(19).waitFor(wait);
    t.same((await shownIds(page)).slice(0, 20), ids.slice(5).reverse(), 'the newest 20 first');
    await page.locator('herald-inbox .item').nth(19).scrollIntoViewIfNeeded();
    await page.locator('herald-inbox .item').nth(24).waitFor(wait);
    const all = await shownIds(page);
    t.same(all.slice(0, 25), [...ids].reverse(), 'then the older ones');
    t.ok(all.every((id, i) => i === 0 || id < all[i - 1]!), 'newest first throughout');
  });

  t.test('keyboard only: open, move, mark read, focus kept inside, Escape returns to the bell', async (t) => {
    const page = await openInbox(t, context, base, 'kay');
    const [a, b] = [await publish(base, { user: 'kay', title: 'alpha' }), await publish(base, { user: 'kay', title: 'beta' })];
    await badgeIs(page, 2);
    await page.locator('#who').click();
    let reached = false;
    for (let i = 0; i < 20 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await focused(page))?.cls === 'bell';
    }
    t.ok(reached, 'the bell is reachable with Tab');
    await page.keyboard.press('Enter');
    await popover(page).waitFor(wait);
    t.equal(await bell(page).getAttribute('aria-expanded'), 'true');
    t.same((await focused(page))?.id, String(b.id), 'focus goes to the newest item');
    await page.keyboard.press('ArrowDown');
    t.same((await focused(page))?.id, String(a.id), 'ArrowDown moves to the next one');
    await page.keyboard.press('Enter');
    await badgeIs(page, 1);
    t.match((await focused(page))?.label ?? '', /^Read\. alpha/, 'it is marked read, and keeps the focus');
    await page.keyboard.press('ArrowUp');
    t.same((await focused(page))?.id, String(b.id));
    for (let i = 0; i < 15; i++) {
      await page.keyboard.press('Tab');
      t.ok(await focused(page), `Tab ${i + 1} stays inside the popover`);
    }
    await page.keyboard.press('Escape');
    await popover(page).waitFor({ state: 'hidden', ...wait });
    t.equal((await focused(page))?.cls, 'bell', 'Escape returns the focus to the bell');
    await page.keyboard.press(' ');
    await popover(page).waitFor(wait);
    await page.keyboard.press('Escape');
  });

  t.test('a phone: the inbox is a full-screen sheet, nothing scrolls sideways', async (t) => {
    const page = await openInbox(t, context, base, 'pia');
    await page.setViewportSize({ width: 360, height: 740 });
    await publish(base, { user: 'pia', title: 'On the go', body: 'A notification on a small screen, with a longer body that wraps over lines.' });
    await toast(page, 'On the go').waitFor(wait);
    await screenshot(page, 'inbox-phone-toast');
    await openPopover(page);
    await sleep(300); // past the sheet's entrance
    const box = await popover(page).boundingBox();
    t.same(box && [box.x, box.y, box.width, box.height].map(Math.round), [0, 0, 360, 740], 'the popover fills the screen');
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), 'no sideways scrolling');
    await screenshot(page, 'inbox-phone');
    await page.locator('herald-inbox').getByRole('button', { name: 'Close' }).click();
    await page.locator('#publish').scrollIntoViewIfNeeded();
    t.ok(await page.evaluate(() => document.getElementById('send')!.getBoundingClientRect().right <= innerWidth), 'the send button fits');
    await screenshot(page, 'inbox-phone-form');
  });

  t.test('the page rides out a server restart and gets what it missed, once each, with one catch-up toast', async (t) => {
    const page = await openInbox(t, context, base, 'cy');
    const before = await publish(base, { user: 'cy', title: 'before the restart' });
    await receivedAtLeast(page, [before.id]);
    await page.evaluate(() => {
      const w = window as unknown as DemoWindow;
      w.marker = 1;
      w.states = [];
      w.heraldDemo.inbox.store.client.on('state', (s) => w.states!.push(String(s)));
    });

    await child.stop();
    await page.locator('herald-inbox:not([data-state="connected"])').waitFor(wait);

    // While this server is down, another Herald on the same data dir (as a second instance of a
    // deployment would) takes three publishes the page cannot hear about live.
    const other = await startServer({ dataDir, env: { HERALD_JWT_SECRET: jwtSecret } });
    const whileDown = [
      await other.publish({ user: 'cy', title: 'while down 1' }),
      await other.publish({ broadcast: true, title: 'while down 2' }),
      await other.publish({ user: 'cy', title: 'while down 3' }),
    ].map((r) => r.body.id as number);
    await other.close();

    child = await spawnServer(env);
    t.equal(child.url, base, 'back on the same address');
    await receivedAtLeast(page, whileDown);
    await connected(page);
    await toast(page, '3 new notifications while you were away').waitFor(wait);
    t.equal(await toast(page, 'while down').count(), 0, 'one summary, not a toast each');
    const after = await publish(base, { user: 'cy', title: 'just after the restart' });
    await toast(page, 'just after the restart').waitFor(wait);
    t.same(await received(page), [before.id, ...whileDown, after.id], 'every missed notification, in order, none doubled');
    await badgeIs(page, 5);
    await openPopover(page);
    for (const title of ['while down 1', 'while down 2', 'while down 3', 'just after the restart']) {
      t.equal(await page.locator('herald-inbox .item', { hasText: title }).count(), 1, `"${title}" once in the list`);
    }
    const w = await page.evaluate(() => {
      const w = window as unknown as DemoWindow;
      return { marker: w.marker, states: w.states };
    });
    t.equal(w.marker, 1, 'the page reconnected by itself, without reloading');
    t.ok(w.states!.includes('reconnecting') || w.states!.includes('offline'), `the state showed the outage (${w.states!.join(' → ')})`);
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
    await badgeIs(page, 0);
    const historyLoads: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/notifications?')) historyLoads.push(r.url());
    });

    // The connection drops; the browser's reconnect waits at the proxy until the publish is done.
    proxy.hold();
    proxy.cut();
    await page.locator('herald-inbox:not([data-state="connected"])').waitFor(wait);
    const missed = await publish(base, { user: 'fi', title: 'published while fi was cut off' });
    proxy.release();

    await toast(page, 'published while fi was cut off').waitFor(wait);
    await connected(page);
    await sleep(300);
    t.same(await received(page), [missed.id], 'once');
    t.same(historyLoads, [], 'no history reload was needed to fill the gap');
    await badgeIs(page, 1);
  });

  t.test('offline: a banner while the browser is offline, and what was published meanwhile once back', async (t) => {
    const proxy = await startProxy([port]);
    t.teardown(() => proxy.close());
    await publish(base, { user: 'someone-else', title: 'before gil connects' });
    const page = await openInbox(t, context, proxy.url, 'gil');
    await openPopover(page);
    t.ok(await page.locator('herald-inbox .banner').isHidden(), 'no banner while connected');

    // Offline, and the connection gone with it (the browser's offline mode leaves open ones be).
    await context.setOffline(true);
    t.teardown(() => context.setOffline(false));
    proxy.cut();
    await page.locator('herald-inbox[data-state="offline"]').waitFor(wait);
    await page.locator('herald-inbox .banner', { hasText: 'You are offline' }).waitFor(wait);
    t.equal(await page.locator('herald-inbox .banner').getAttribute('role'), 'status');
    await screenshot(page, 'inbox-offline');
    const missed = await publish(base, { user: 'gil', title: 'published while gil was offline' });
    await context.setOffline(false);

    await item(page, missed.id).waitFor(wait);
    await connected(page);
    await page.locator('herald-inbox .banner').waitFor({ state: 'hidden', ...wait });
    await sleep(300);
    t.same(await received(page), [missed.id], 'once');
  });
});

browserTest('with demo mode off the page asks for a token, then works the same', async (t, browser) => {
  const s = await startServer();
  t.teardown(() => s.close());
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
