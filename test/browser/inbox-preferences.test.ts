// The preferences panel of <herald-inbox> (the gear in its header) in Chromium against a real server:
// GET /preferences fills it, Save writes the whole document with PUT /preferences (README,
// Preferences).
import t from 'tap';
import { browserTest, screenshot } from '../support/browser.js';
import type { Json } from '../support/http.js';
import { startServer } from '../support/server.js';
import { tokenFor } from '../support/tokens.js';

const wait = { timeout: 15_000 };

t.setTimeout(120_000);

browserTest('types and topics seen get in-app and push toggles; the push mode and quiet hours are saved', async (t, browser) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const token = tokenFor('pat', { topics: ['ops'] });
  const prefs = async () => (await (await fetch(`${s.url}/preferences`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json;
  t.same(await prefs(), { push: 'offline', quietHours: null, types: {}, topics: {} }, 'the default document');

  await s.publish({ user: 'pat', title: 'New comment on your post', type: 'comment' });
  await s.publish({ user: 'pat', title: 'Your invoice is ready', type: 'billing' });
  await s.publish({ topic: 'ops', title: 'Disk almost full', type: 'alert' });

  const page = await browser.context.newPage();
  page.on('pageerror', (err) => t.fail(`error in the page: ${err.message}`));
  await page.goto(`${s.url}/`);
  await page.getByLabel('Subscriber token').fill(token);
  await page.getByRole('button', { name: 'Open inbox' }).click();
  await page.locator('herald-inbox[data-state="connected"]').waitFor(wait);
  await page.locator('herald-inbox .bell').click();
  await page.locator('herald-inbox .item').nth(2).waitFor(wait);
  const inbox = page.locator('herald-inbox');
  await inbox.getByRole('button', { name: 'Preferences' }).click();

  const push = inbox.getByLabel('Send push');
  await push.waitFor(wait);
  t.equal(await push.inputValue(), 'offline');
  t.notOk(await inbox.getByLabel('Quiet hours', { exact: true }).isChecked(), 'no quiet hours yet');
  for (const name of ['comment', 'billing', 'alert', '#ops']) {
    t.ok(await inbox.getByLabel(`${name}: in-app`).isChecked(), `${name} is on in the app by default`);
    t.ok(await inbox.getByLabel(`${name}: push`).isChecked(), `${name} is on for push by default`);
  }
  await inbox.getByLabel('comment: in-app').uncheck();
  await inbox.getByLabel('billing: push').uncheck();
  await inbox.getByLabel('#ops: push').uncheck();
  await push.selectOption('always');
  await inbox.getByLabel('Quiet hours', { exact: true }).check();
  await inbox.getByLabel('Quiet hours start').fill('22:30');
  await inbox.getByLabel('Quiet hours end').fill('07:15');
  await screenshot(page, 'inbox-preferences');
  await inbox.getByRole('button', { name: 'Save preferences' }).click();
  await inbox.getByText('Saved.').waitFor(wait);

  const timeZone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
  t.same(await prefs(), {
    push: 'always',
    quietHours: { start: '22:30', end: '07:15', timeZone },
    types: { comment: { inapp: false }, billing: { push: false } },
    topics: { ops: { push: false } },
  }, 'only what was turned off is written (absent is on)');

  // Opened again, the panel shows what is stored.
  await inbox.getByRole('button', { name: 'Back to notifications' }).click();
  await inbox.getByRole('button', { name: 'Preferences' }).click();
  await push.waitFor(wait);
  t.equal(await push.inputValue(), 'always');
  t.notOk(await inbox.getByLabel('comment: in-app').isChecked());
  t.ok(await inbox.getByLabel('comment: push').isChecked());
  t.ok(await inbox.getByLabel('Quiet hours', { exact: true }).isChecked());
});
