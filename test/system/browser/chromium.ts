/**
 * Debian's Chromium driven by playwright-core (no browser download: `.ci/run` installs the
 * package when it is missing), and the screenshots the browser tests keep.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Simulator } from '../../../simulator/types';
import { REPO, removeDir, type NodeRedProcess } from '../../helpers/node-red-process';

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
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium; .ci/run does it) or point SCB_M2M_CHROMIUM at a Chromium binary`,
    );
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

/**
 * What the editor got wrong, as it happens: uncaught errors, console errors of this Node-RED's
 * pages (the editor also asks catalogue.nodered.org, unreachable here) and failed requests for
 * our own resources (admin routes and icons).
 */
export function collectErrors(page: Page, nodeRedUrl: string): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && message.location().url.startsWith(nodeRedUrl)) errors.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && /scb-m2m|icons\/@flowreport/.test(response.url()))
      errors.push(`${response.status()} ${response.url()}`);
  });
  return errors;
}

/** A browser suite's after hook: the browser, Node-RED and the simulator stopped, the dirs removed. */
export async function tearDown(parts: {
  browser?: Browser;
  nodeRed?: NodeRedProcess;
  simulator?: Simulator;
  dirs: Array<string | undefined>;
}): Promise<void> {
  await parts.browser?.close();
  await parts.nodeRed?.stop();
  await parts.simulator?.stop();
  for (const dir of parts.dirs) removeDir(dir);
}
