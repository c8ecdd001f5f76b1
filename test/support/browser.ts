// Headless Chromium for the browser tests: Debian's `chromium` package driven by playwright-core
// (never a downloaded browser). Kept apart from the other support files so other suites do not load playwright.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { projectFile } from '../../src/paths.js';
import { tempDir } from '../../support/util.js';

export const chromiumPath = '/usr/bin/chromium';

/** Where screenshots go: git-ignored, kept after the run for a person (or CI) to look at. */
export const artifactsDir = projectFile('artifacts');

/** Why the browser suite cannot run here, or undefined when it can. */
export function chromiumMissing(): string | undefined {
  return existsSync(chromiumPath)
    ? undefined
    : `${chromiumPath} is missing: install Debian's chromium package (apt-get install -y chromium; .ci/run does this in CI)`;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh headless Chromium with its own profile directory, removed on close. */
export async function launchBrowser(): Promise<Browser> {
  const profile = tempDir('herald-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const path = `${artifactsDir}/${name}.png`;
  await page.screenshot({ path });
  return path;
}

/**
 * A test of this file with a fresh Chromium, closed after it. Without Chromium the test fails rather
 * than skips: a browser suite that passes by not running proves nothing.
 */
export function browserTest(name: string, fn: (t: Test, browser: Browser) => Promise<void>): void {
  const missing = chromiumMissing();
  if (missing) return void t.fail(`${name}: ${missing}`);
  t.test(name, async (t) => {
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    await fn(t, browser);
  });
}
