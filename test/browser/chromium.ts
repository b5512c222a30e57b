/**
 * Debian's Chromium driven by playwright-core (no browser download: `.ci/run` installs the
 * package when it is missing), and the screenshots the browser tests keep.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO } from '../helpers/node-red-process';

export const CHROMIUM = process.env.SCB_M2M_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Test artefacts: one PNG per step, gitignored. */
const ARTEFACTS = path.join(REPO, '.test-output', 'browser');
/** The README's pictures; written only with UPDATE_SCREENSHOTS=1 so a test run leaves git clean. */
const README_SCREENSHOTS = path.join(REPO, 'docs', 'screenshots');

/**
 * A developer's machine without Chromium reports the browser tests as skipped (never as
 * passed) and says how to get it; in CI (CI set) a missing Chromium fails them instead.
 */
export function skipWithoutChromium(test: Mocha.Context): void {
  if (fs.existsSync(CHROMIUM) || process.env.CI) return;
  console.log(`      (skipped: ${CHROMIUM} is missing; apt-get install chromium, as .ci/run does)`);
  test.skip();
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium; .ci/run does it) or point SCB_M2M_CHROMIUM at a Chromium binary`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/**
 * Saves a screenshot of the page (or of one element, or a region) as `.test-output/browser/<name>.png`;
 * with `readme`, also as `docs/screenshots/<readme>.png` when UPDATE_SCREENSHOTS=1.
 */
export async function screenshot(
  page: Page,
  name: string,
  options: { readme?: string; selector?: string; clip?: { x: number; y: number; width: number; height: number } } = {},
): Promise<Buffer> {
  fs.mkdirSync(ARTEFACTS, { recursive: true });
  const file = path.join(ARTEFACTS, `${name}.png`);
  const png = options.selector
    ? await page.locator(options.selector).screenshot({ path: file, animations: 'disabled' })
    : await page.screenshot({ path: file, animations: 'disabled', clip: options.clip });
  if (options.readme && process.env.UPDATE_SCREENSHOTS === '1') {
    fs.mkdirSync(README_SCREENSHOTS, { recursive: true });
    fs.writeFileSync(path.join(README_SCREENSHOTS, `${options.readme}.png`), png);
  }
  return png;
}
