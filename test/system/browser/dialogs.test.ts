/**
 * What the dialogs look like, measured in a real Chromium against a real Node-RED with this
 * package: every label's icon on the line of its input, placeholders that fit their input,
 * certificate values that break only where a word is longer than the cell, the connection
 * test on its own row, an icon per flow node, a help text that fits its sidebar, and a new
 * config dialog that asks the runtime only for what exists. In English and in Swedish.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startSimulator } from '../../../simulator';
import type { Simulator } from '../../../simulator/types';
import { collectErrors, launchChromium, screenshot, skipWithoutChromium, tearDown } from './chromium';
import { makeUserDir, startNodeRed, type NodeRedProcess } from '../../helpers/node-red-process';

/* The page's own globals, for the functions that run in it (the project compiles without the DOM library). */
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const Node: { TEXT_NODE: number };
declare function getComputedStyle(element: unknown): any;
type Element = any;

const PALETTE = '#red-ui-palette-container-SCB_M2M';
const FLOW = [
  { id: 'dialogs-tab', type: 'tab', label: 'Dialogs' },
  {
    id: 'dialogs-heartbeat',
    type: 'scb-m2m-heartbeat',
    z: 'dialogs-tab',
    name: '',
    config: '',
    x: 150,
    y: 80,
    wires: [[]],
  },
  { id: 'dialogs-upload', type: 'scb-m2m-upload', z: 'dialogs-tab', name: '', config: '', x: 150, y: 160, wires: [[]] },
  {
    id: 'dialogs-history',
    type: 'scb-m2m-history',
    z: 'dialogs-tab',
    name: '',
    config: '',
    x: 150,
    y: 240,
    wires: [[]],
  },
  { id: 'dialogs-outbox', type: 'scb-m2m-outbox', z: 'dialogs-tab', name: '', config: '', x: 150, y: 320, wires: [[]] },
];

/**
 * What is out of place in the visible form rows under `root`: a label wider than its room, an icon
 * off its input's line (or off its label text's line), a placeholder wider than its input.
 */
function layoutProblems(page: Page, root: string): Promise<string[]> {
  return page.evaluate((root) => {
    const problems: string[] = [];
    const visible = (el: Element) => !!el && el.offsetParent !== null;
    const middle = (el: Element) => {
      const r = el.getBoundingClientRect();
      return r.top + r.height / 2;
    };
    for (const row of document.querySelectorAll(`${root} .form-row`) as Element[]) {
      const label = row.querySelector(':scope > label');
      const icon = label?.querySelector('i.fa');
      const text = label?.querySelector('span');
      const field = [
        ...row.querySelectorAll(':scope > .red-ui-typedInput-container, :scope > input, :scope > select'),
      ].find(visible);
      if (!visible(row) || !label) continue;
      const name = (label.textContent ?? '').trim();
      if (label.scrollWidth > label.clientWidth + 1) problems.push(`the label "${name}" is cut off`);
      if (!icon || !text || !field) continue;
      const box = field.getBoundingClientRect();
      if (middle(icon) < box.top || middle(icon) > box.bottom)
        problems.push(`the icon of "${name}" is not on the line of its input`);
      if (Math.abs(middle(icon) - middle(text)) > 3)
        problems.push(`the icon of "${name}" is not on the line of its text`);
    }
    const context = document.createElement('canvas').getContext('2d');
    for (const input of document.querySelectorAll(`${root} input[placeholder]`) as Element[]) {
      if (!visible(input) || !input.placeholder) continue;
      const style = getComputedStyle(input);
      context.font = style.font;
      const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      if (context.measureText(input.placeholder).width > room)
        problems.push(`the placeholder "${input.placeholder}" is cut off`);
    }
    return problems;
  }, root);
}

/** Words of the certificate table that break across lines although they would fit on one. */
function brokenWords(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const broken: string[] = [];
    for (const cell of document.querySelectorAll('#scb-m2m-config-certificate td') as Element[]) {
      const node = cell.firstChild;
      if (!node || node.nodeType !== Node.TEXT_NODE) continue;
      const text = node.textContent ?? '';
      for (const match of text.matchAll(/\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const rects = [...range.getClientRects()];
        const lines = new Set(rects.map((r: any) => Math.round(r.top)));
        const wholeWidth = rects.reduce((sum: number, r: any) => sum + r.width, 0);
        // A word longer than the cell (a fingerprint) has to break; any other must not.
        if (lines.size > 1 && wholeWidth < cell.clientWidth) broken.push(match[0]);
      }
    }
    return broken;
  });
}

describe('dialogs in a real browser: layout and requests', function () {
  this.bail(true);

  let simulator: Simulator;
  let simulatorDir: string;
  let userDir: string;
  let nodeRed: NodeRedProcess;
  let browser: Browser;

  before(async function () {
    skipWithoutChromium(this);
    this.timeout(120_000);
    simulatorDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-m2m-dialogs-'));
    simulator = await startSimulator({
      dir: simulatorDir,
      historyDelayMs: 0,
      clients: [
        { name: 'reporter', organisationsnummer: '9990000045', undersokningar: ['VINN'], passphrase: 'dialogs' },
      ],
    });
    userDir = makeUserDir();
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(FLOW));
    nodeRed = await startNodeRed(userDir);
    browser = await launchChromium();
  });

  after(async function () {
    this.timeout(60_000);
    await tearDown({ browser, nodeRed, simulator, dirs: [userDir, simulatorDir] });
  });

  for (const locale of ['en-US', 'sv-SE']) {
    describe(locale, () => {
      let context: BrowserContext;
      let page: Page;
      let errors: string[];
      const certificateRequests: string[] = [];
      const shot = (name: string, options?: Parameters<typeof screenshot>[2]) =>
        screenshot(page, `dialogs-${locale}-${name}`, options);

      before(async function () {
        if (!browser) this.skip();
        context = await browser.newContext({ locale, viewport: { width: 1280, height: 900 } });
        page = await context.newPage();
        errors = collectErrors(page, nodeRed.url);
        page.on('request', (request) => {
          if (/scb-m2m-config\/[^/]+\/certificate/.test(request.url())) certificateRequests.push(request.url());
        });
        await page.goto(nodeRed.url);
        await page.waitForSelector(`${PALETTE} .red-ui-palette-node[data-palette-type="scb-m2m-upload"]`);
      });

      after(async () => {
        await context?.close();
      });

      it('gives heartbeat, upload, history and outbox an icon each', async () => {
        const icons = await page
          .locator(`${PALETTE} .red-ui-palette-node .red-ui-palette-icon`)
          .evaluateAll((els) => els.map((el) => getComputedStyle(el).backgroundImage));
        assert.equal(icons.length, 4);
        assert.equal(new Set(icons).size, 4, `four different icons, got ${icons.join(', ')}`);
        await shot('palette', { selector: PALETTE });
      });

      it("upload dialog: icons on their input's line, placeholders not cut off", async () => {
        await page.locator('g.red-ui-flow-node-group').nth(1).dblclick();
        await page.waitForSelector('#node-input-organisationsnummer', { state: 'attached' });
        await page.locator('.red-ui-typedInput-container').first().waitFor();
        await shot('upload-dialog', { selector: '.red-ui-tray' });
        assert.deepEqual(await layoutProblems(page, '.red-ui-tray'), []);
      });

      it('a new config dialog asks for no certificate of a node never deployed, and lays out its rows', async () => {
        await page.click('#node-input-btn-config-add');
        await page.waitForSelector('#node-config-input-environment', { state: 'visible' });
        await page.selectOption('#node-config-input-environment', 'custom');
        await page.selectOption('#node-config-input-certSource', 'path');
        await shot('config-dialog-new', { selector: '.red-ui-tray' });
        assert.deepEqual(await layoutProblems(page, '.red-ui-tray'), []);
        // The hint to deploy or press "Show certificate" stands where the details will be.
        assert.notEqual((await page.locator('#scb-m2m-config-certificate').innerText()).trim(), '');
        assert.deepEqual(certificateRequests, []);
      });

      it('shows the certificate without breaking a word, and the connection test on a row of its own', async () => {
        await page.fill('#node-config-input-baseUrl', simulator.url);
        await page.fill('#node-config-input-caPath', simulator.caPath);
        await page.fill('#node-config-input-certPath', simulator.certificates.reporter.path);
        await page.fill('#node-config-input-passphrase', 'dialogs');
        await page.click('#scb-m2m-config-check');
        await page.locator('#scb-m2m-config-certificate table').waitFor();
        await page.click('#scb-m2m-config-test');
        await page.locator('#scb-m2m-config-connection .scb-m2m-config-ok').waitFor();
        // The test's answer leaves the details where they were.
        assert.equal(await page.locator('#scb-m2m-config-certificate table tr').count(), 7);
        const rows = page.locator('.form-row', { has: page.locator('#scb-m2m-config-connection') });
        assert.equal(await rows.count(), 1);
        assert.equal(
          await rows.locator('#scb-m2m-config-certificate').count(),
          0,
          'the test answer and the details are in different rows',
        );
        assert.deepEqual(await brokenWords(page), []);
        await page.locator('#scb-m2m-config-connection').scrollIntoViewIfNeeded();
        await shot('config-dialog-tested', { selector: '.red-ui-tray' });
        await page.click('#node-config-dialog-cancel');
        await page.click('#node-dialog-cancel');
        await page.waitForSelector('.red-ui-tray', { state: 'detached' });
      });

      it('the heartbeat help fits the sidebar', async () => {
        await page.locator('g.red-ui-flow-node-group').first().click();
        // The help tab by the editor's own API: its button sits elsewhere in Node-RED 5's two sidebars.
        await page.evaluate(() =>
          (globalThis as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('help'),
        );
        const help = page.locator('.red-ui-help', { has: page.locator('dl.message-properties') }).last();
        await help.locator('dl.message-properties').first().waitFor();
        const overflowing = await help.evaluate((root) => {
          const right = root.getBoundingClientRect().right;
          return Array.from(root.querySelectorAll('*'))
            .filter((el: Element) => el.offsetParent !== null && el.getBoundingClientRect().right > right + 1)
            .map((el: Element) => `${el.tagName.toLowerCase()}: ${(el.textContent ?? '').trim().slice(0, 60)}`);
        });
        await shot('heartbeat-help', { selector: '.red-ui-help:has(dl.message-properties) >> nth=-1' });
        assert.deepEqual(overflowing, []);
      });

      it('outbox dialog: the folder as a TypedInput, the subfolders box on its line, nothing cut off', async () => {
        await page.locator('#dialogs-outbox > rect').first().dblclick();
        await page.waitForSelector('#node-input-recursive', { state: 'attached' });
        await page.locator('.red-ui-typedInput-container').first().waitFor();
        await shot('outbox-dialog', { selector: '.red-ui-tray' });
        assert.deepEqual(await layoutProblems(page, '.red-ui-tray'), []);
        await page.click('#node-dialog-cancel');
        await page.waitForSelector('.red-ui-tray', { state: 'detached' });
      });

      it('raised no console error and no failed request of ours', () => {
        assert.deepEqual(errors, []);
      });
    });
  }
});
