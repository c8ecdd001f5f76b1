// <herald-inbox> shows the notification fields of a publish (url, icon, actor, actions) in Chromium
// against a real server.
import t from 'tap';
import { browserTest, screenshot } from '../support/browser.js';
import { startServer } from '../support/server.js';
import { tokenFor } from '../support/tokens.js';

const wait = { timeout: 15_000 };

t.setTimeout(120_000);

browserTest('actor, icon and actions are shown; a url opens on click and marks read; herald-open can keep the page', async (t, browser) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const page = await browser.context.newPage();
  page.on('pageerror', (err) => t.fail(`error in the page: ${err.message}`));
  await page.goto(`${s.url}/`);
  await page.getByLabel('Subscriber token').fill(tokenFor('ray'));
  await page.getByRole('button', { name: 'Open inbox' }).click();
  await page.locator('herald-inbox[data-state="connected"]').waitFor(wait);

  const avatar = `${s.url}/favicon.svg`;
  const rich = await s.publish({
    user: 'ray',
    title: 'Ann commented on your post',
    body: 'Looks great!',
    type: 'comment',
    url: '/?opened=1',
    actor: { name: 'Ann Lee', avatar },
    actions: [{ label: 'Reply', url: '/?reply=1' }, { label: 'View post', url: 'https://example.com/post/1' }],
  });
  t.equal(rich.status, 201, JSON.stringify(rich.body));
  const id = rich.body.id as number;
  const withIcon = await s.publish({ user: 'ray', title: 'Build passed', icon: avatar });
  t.equal(withIcon.status, 201);

  await page.locator('herald-inbox .bell').click();
  const item = page.locator(`herald-inbox .item[data-id="${id}"]`);
  await item.waitFor(wait);
  t.equal(await item.locator('.lead img').getAttribute('src'), avatar, "the actor's avatar");
  t.match(await item.locator('.meta').textContent(), /Ann Lee/, "the actor's name");
  t.match(await item.getAttribute('aria-label'), /^Unread\. Ann Lee\. Ann commented/);
  t.same(await item.locator('.action').allTextContents(), ['Reply', 'View post'], 'the actions');
  t.equal(await page.locator(`herald-inbox .item[data-id="${withIcon.body.id}"] .lead img`).getAttribute('src'), avatar, 'the icon');
  await screenshot(page, 'inbox-fields');

  // An app can route by itself: a cancelled herald-open keeps the page, and the item is read.
  await page.evaluate(() => {
    document.querySelector('herald-inbox')!.addEventListener('herald-open', (e) => {
      (window as unknown as { opened: string }).opened = (e as CustomEvent<{ url: string }>).detail.url;
      e.preventDefault();
    }, { once: true });
  });
  await item.locator('.action', { hasText: 'Reply' }).click();
  t.equal(await page.evaluate(() => (window as unknown as { opened: string }).opened), '/?reply=1');
  await page.waitForFunction((id) => !document.querySelector('herald-inbox')!.shadowRoot!.querySelector(`[data-id="${id}"]`)!.classList.contains('unread'), id, wait);

  // Without a listener, a click on the item opens its url.
  await Promise.all([page.waitForURL(/\?opened=1$/, wait), item.click()]);
});
