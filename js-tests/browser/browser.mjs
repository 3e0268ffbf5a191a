// Debian's Chromium (/usr/bin/chromium) driven by playwright-core, with a fresh profile per
// launch; nothing is downloaded. A test that fails leaves screenshots in a temp folder.
import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Skips loudly without Chromium, except under CI=true, where a missing browser fails. */
export function chromiumOrSkip(t) {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (apt-get install -y chromium)`);
  console.warn(`SKIPPED: ${CHROMIUM} is missing (apt-get install -y chromium)`);
  t.skip(`${CHROMIUM} is missing`);
  return false;
}

export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'activenow-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const browser = context.browser();
  return {
    context,
    /** A second, separate profile-like context: its own localStorage, so its own session id. */
    async isolated() {
      if (browser) return browser.newContext();
      // launchPersistentContext has no browser object to make contexts from: a second launch.
      const other = await launch();
      extra.push(other);
      return other.context;
    },
    async close() {
      for (const o of extra) await o.close();
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
const extra = [];

/** Runs `body(pages)`; on failure writes a screenshot of every page to a temp folder. */
export async function withScreenshots(name, pages, body) {
  try {
    await body();
  } catch (e) {
    const dir = mkdtempSync(join(tmpdir(), `activenow-browser-${name}-`));
    let i = 0;
    for (const p of pages()) {
      try {
        await p.screenshot({ path: join(dir, `page-${i++}.png`), fullPage: true });
      } catch {}
    }
    console.error(`screenshots of the failed test "${name}" are in ${dir}`);
    throw e;
  }
}
