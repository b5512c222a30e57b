/**
 * The SCB sidebar in a real Chromium against a real Node-RED with this package, the real journal
 * and the real simulator: a deployed flow uploads a file in two segments and the row appears,
 * counts the segments and ends accepted, pushed over comms; a rejected file shows SCB's message
 * in its row; the tab in Swedish for a Swedish browser; no console error from our resources.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { SEGMENT_SIZE } from '../../../lib/api';
import { startSimulator } from '../../../simulator';
import type { Simulator } from '../../../simulator/types';
import { collectErrors, launchChromium, screenshot, skipWithoutChromium, tearDown } from './chromium';
import { makeUserDir, startNodeRed, type NodeRedProcess } from '../../helpers/node-red-process';
import { sha256 } from '../../helpers/util';

/* The page's own globals, for the functions that run in it (the project compiles without the DOM library). */
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const MutationObserver: any;
declare const window: any;
declare const RED: { plugins: { getPlugin(id: string): { onadd?: unknown } | undefined } };
declare function getComputedStyle(element: unknown): any;

const PASSPHRASE = 'sidebar-test';
const TAB = 'sidebar-tab';
const CONFIG = 'sidebar-cfg';
const PALETTE = '#red-ui-palette-container-SCB_M2M';
const ROW = '.scb-m2m-deliveries-row';

function flow(simulator: Simulator, files: { big: string; rejected: string; later: string }) {
  const inject = (id: string, name: string, filename: string, y: number, upload = 'sidebar-upload') => ({
    id,
    type: 'inject',
    z: TAB,
    name,
    props: [{ p: 'filename', v: filename, vt: 'str' }],
    repeat: '',
    crontab: '',
    once: false,
    topic: '',
    x: 140,
    y,
    wires: [[upload]],
  });
  const upload = (id: string, name: string, history: string, y: number) => ({
    id,
    type: 'scb-m2m-upload',
    z: TAB,
    name,
    config: CONFIG,
    organisationsnummer: '',
    organisationsnummerType: 'str',
    undersokning: '',
    undersokningType: 'str',
    referensperiod: '2026-10-31',
    referensperiodType: 'str',
    filformat: 'V40',
    filformatType: 'str',
    version: '',
    versionType: 'str',
    x: 380,
    y,
    wires: [[history]],
  });
  const config = (id: string, name: string, certPath: string) => ({
    id,
    type: 'scb-m2m-config',
    name,
    environment: 'test',
    baseUrl: '',
    apiVersion: 'v2',
    certPath,
    certName: '',
    caPath: '',
    organisationsnummer: '',
    undersokning: '',
    expiryWarningDays: 30,
    credentials: { passphrase: PASSPHRASE },
  });
  return [
    { id: TAB, type: 'tab', label: 'Report to SCB' },
    {
      id: CONFIG,
      type: 'scb-m2m-config',
      name: 'Simulator',
      environment: 'custom',
      baseUrl: simulator.url,
      apiVersion: 'v2',
      certPath: simulator.certificates.reporter.path,
      certName: '',
      caPath: simulator.caPath,
      organisationsnummer: '9990000045',
      undersokning: 'VINN',
      expiryWarningDays: 30,
      credentials: { passphrase: PASSPHRASE },
    },
    // The same certificate with a warning further out than its days left, and an expired one.
    { ...config('sidebar-cfg-early', 'Warns early', simulator.certificates.reporter.path), expiryWarningDays: 100_000 },
    config('sidebar-cfg-expired', 'Old certificate', simulator.certificates.old.path),
    inject('sidebar-send-big', 'Send the October report', files.big, 80),
    inject('sidebar-send-rejected', 'Send a faulty report', files.rejected, 140),
    upload('sidebar-upload', 'SCB upload', 'sidebar-history', 110),
    {
      id: 'sidebar-history',
      type: 'scb-m2m-history',
      z: TAB,
      name: 'SCB history',
      config: CONFIG,
      mode: 'poll',
      interval: 1,
      timeout: 60,
      rule: '',
      x: 570,
      y: 110,
      wires: [[], [], []],
    },
    // A poll that gives up after a second: its delivery stays pending, for "check now".
    inject('sidebar-send-later', 'Send the September report', files.later, 220, 'sidebar-upload-later'),
    upload('sidebar-upload-later', 'SCB upload (quick look)', 'sidebar-history-short', 220),
    {
      id: 'sidebar-history-short',
      type: 'scb-m2m-history',
      z: TAB,
      name: 'SCB history, 1 s',
      config: CONFIG,
      mode: 'poll',
      interval: 1,
      timeout: 1,
      rule: '',
      x: 600,
      y: 220,
      wires: [[], [], []],
    },
  ];
}

describe('SCB sidebar in a real browser (Chromium + Node-RED + journal + simulator)', function () {
  this.bail(true);

  let simulator: Simulator;
  let work: string;
  let userDir: string;
  let nodeRed: NodeRedProcess;
  let browser: Browser;
  const files = { big: '', rejected: '', later: '' };

  before(async function () {
    skipWithoutChromium(this);
    this.timeout(120_000);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-m2m-sidebar-'));
    simulator = await startSimulator({
      dir: path.join(work, 'simulator'),
      // SCB decides when a test says so (settleHistory), never by the clock.
      historyDelayMs: 600_000,
      clients: [
        { name: 'reporter', organisationsnummer: '9990000045', undersokningar: ['VINN'], passphrase: PASSPHRASE },
        {
          name: 'old',
          organisationsnummer: '9990000045',
          undersokningar: ['VINN'],
          passphrase: PASSPHRASE,
          kind: 'expired',
        },
      ],
    });
    // Two segments: a valid XML file a little larger than one segment.
    files.big = path.join(work, 'V40_2026-10.xml');
    const head = '<?xml version="1.0" encoding="utf-8"?>\n<Report ReportingAgentCode="9990000045"><!-- ';
    const tail = ' --></Report>\n';
    fs.writeFileSync(files.big, head + 'x'.repeat(SEGMENT_SIZE + 1000 - head.length - tail.length) + tail);
    files.rejected = path.join(work, 'V40_2026-10_faulty.xml');
    fs.writeFileSync(files.rejected, '<Report><!-- SIMULATE-REJECT --></Report>\n');
    files.later = path.join(work, 'V40_2026-09.xml');
    fs.writeFileSync(files.later, '<Report ReportingAgentCode="9990000045"/>\n');
    userDir = makeUserDir();
    nodeRed = await startNodeRed(userDir);
    const deployed = await fetch(`${nodeRed.base}/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify(flow(simulator, files)),
    });
    assert.equal(deployed.status, 204, await deployed.text());
    browser = await launchChromium();
  });

  after(async function () {
    this.timeout(60_000);
    await tearDown({ browser, nodeRed, simulator, dirs: [userDir, work] });
  });

  /** The editor of `server` in `locale`, loaded, with menu > View open; console errors of our resources collected. */
  async function viewMenu(
    server: NodeRedProcess,
    locale = 'en-US',
  ): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
    const context = await browser.newContext({ locale, viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const errors = collectErrors(page, server.url);
    await page.goto(server.url);
    await page.waitForSelector(`${PALETTE} .red-ui-palette-node[data-palette-type="scb-m2m-upload"]`);
    await page.click('#red-ui-header-button-sidemenu');
    await page.hover('#menu-item-view-menu');
    await page.locator('#menu-item-view-menu-debug').waitFor();
    return { context, page, errors };
  }

  /** The editor in `locale` with the SCB sidebar open. */
  async function editor(locale: string): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
    const opened = await viewMenu(nodeRed, locale);
    await opened.page.click('#menu-item-view-menu-scb-m2m-deliveries');
    await opened.page.locator('.scb-m2m-deliveries').waitFor();
    return opened;
  }

  async function inject(id: string): Promise<void> {
    const answer = await fetch(`${nodeRed.base}/inject/${id}`, { method: 'POST' });
    assert.equal(answer.status, 200);
  }

  describe('English', () => {
    let context: BrowserContext;
    let page: Page;
    let errors: string[];

    before(async function () {
      this.timeout(60_000);
      ({ context, page, errors } = await editor('en-US'));
      // Every state text a row showed, as the comms messages came in (rows are redrawn, not polled).
      await page.evaluate((row) => {
        window.scbSeen = [];
        new MutationObserver((mutations: any[]) => {
          for (const mutation of mutations) {
            for (const added of mutation.addedNodes) {
              if (!added.matches?.(row)) continue;
              window.scbSeen.push(
                `${added.querySelector('.scb-m2m-deliveries-file').textContent}: ${added.querySelector('.scb-m2m-deliveries-state').textContent}`,
              );
            }
          }
        }).observe(document.querySelector('.scb-m2m-deliveries'), { childList: true, subtree: true });
      }, ROW);
    });

    after(async () => {
      await context?.close();
    });

    it("shows the connection's certificate: subject, environment and days left", async () => {
      const certificate = page.locator('.scb-m2m-deliveries-certificate', { hasText: 'Simulator' });
      await certificate.locator('.scb-m2m-deliveries-days').waitFor();
      assert.match(await certificate.innerText(), /custom server/);
      assert.match(await certificate.locator('.scb-m2m-deliveries-subject').innerText(), /9990000045/);
      const days = certificate.locator('.scb-m2m-deliveries-days');
      assert.match(await days.innerText(), /^\d+ days left$/);
      assert.equal(
        await days.evaluate((el: any) => el.className),
        'scb-m2m-deliveries-days',
        'neither warned nor expired',
      );
    });

    it('in the warning colour inside the connection\'s "Warn before" days, in red when expired', async () => {
      const early = page.locator('.scb-m2m-deliveries-certificate', { hasText: 'Warns early' });
      await early.locator('.scb-m2m-deliveries-days.scb-m2m-deliveries-expiring').waitFor();
      assert.match((await early.innerText()).trim(), /^Warns early test\n.*9990000045.* \d+ days left$/s);
      const expired = page.locator('.scb-m2m-deliveries-certificate', { hasText: 'Old certificate' });
      const detail = expired.locator('.scb-m2m-deliveries-certificate-detail.scb-m2m-deliveries-expired');
      await detail.waitFor();
      assert.match(await detail.innerText(), /expired/);
      const [warning, red] = await Promise.all(
        [early, expired].map((row) =>
          row
            .locator('.scb-m2m-deliveries-expiring, .scb-m2m-deliveries-expired')
            .evaluate((el: any) => getComputedStyle(el).color),
        ),
      );
      assert.notEqual(warning, red, 'two different colours');
    });

    it('a deployed flow uploads a file in two segments: its row appears, counts the segments and ends accepted', async function () {
      this.timeout(60_000);
      await inject('sidebar-send-big');
      const row = page.locator(ROW, { hasText: 'V40_2026-10.xml' }).filter({ hasNot: page.locator('text=faulty') });
      await row.locator('.scb-m2m-deliveries-state', { hasText: 'sent' }).waitFor({ timeout: 45_000 });
      simulator.settleHistory();
      await row.locator('.scb-m2m-deliveries-state', { hasText: 'accepted' }).waitFor({ timeout: 45_000 });
      const seen = ((await page.evaluate(() => window.scbSeen)) as string[]).filter((line) =>
        line.startsWith('V40_2026-10.xml:'),
      );
      assert.ok(seen.includes('V40_2026-10.xml: segment 1 of 2'), `the row counted segment 1: ${seen.join(' | ')}`);
      assert.ok(seen.includes('V40_2026-10.xml: segment 2 of 2'), `the row counted segment 2: ${seen.join(' | ')}`);
      assert.ok(seen.indexOf('V40_2026-10.xml: segment 2 of 2') < seen.lastIndexOf('V40_2026-10.xml: accepted'));
      assert.equal(await row.locator('.scb-m2m-deliveries-dot-accepted').count(), 1, 'a green dot');
      assert.match(await row.locator('.scb-m2m-deliveries-target').innerText(), /9990000045 · VINN · 2026-10-31 · V40/);
      const delivery = simulator.deliveries().find((d) => d.filnamn === 'V40_2026-10.xml');
      assert.ok(delivery);
      assert.equal(await row.locator('.scb-m2m-deliveries-upload code').innerText(), delivery.deliveryId);
      assert.match(await row.locator('.scb-m2m-deliveries-size').innerText(), /^8\.8 MB$/);
    });

    it("a rejected file shows SCB's message in its row, and in full once opened, with every change", async function () {
      this.timeout(60_000);
      await inject('sidebar-send-rejected');
      const row = page.locator(ROW, { hasText: 'V40_2026-10_faulty.xml' });
      await row.locator('.scb-m2m-deliveries-state', { hasText: 'sent' }).waitFor({ timeout: 45_000 });
      simulator.settleHistory();
      await row.locator('.scb-m2m-deliveries-state', { hasText: 'rejected' }).waitFor({ timeout: 45_000 });
      assert.match(
        await row.locator('.scb-m2m-deliveries-reason').innerText(),
        /Filen innehåller markören SIMULATE-REJECT/,
      );
      // Newest first.
      assert.match(await page.locator(ROW).first().innerText(), /faulty/);
      await row.click();
      const details = row.locator('.scb-m2m-deliveries-details');
      await details.waitFor();
      assert.match(
        await details.locator('.scb-m2m-deliveries-messages').innerText(),
        /Filen innehåller markören SIMULATE-REJECT\./,
      );
      // What was sent: the file, its exact size and the SHA-256 taken as it was sent.
      const bytes = fs.readFileSync(files.rejected);
      assert.equal(await details.locator('dd.scb-m2m-deliveries-source').innerText(), files.rejected);
      assert.equal(await details.locator('dd.scb-m2m-deliveries-bytes').innerText(), String(bytes.length));
      assert.equal(await details.locator('dd.scb-m2m-deliveries-sha256').innerText(), sha256(bytes));
      const changes = await details.locator('.scb-m2m-deliveries-changes li').allInnerTexts();
      assert.ok(
        changes.some((c) => /sent/.test(c)) && /rejected/.test(changes.at(-1) ?? ''),
        `changes: ${changes.join(' | ')}`,
      );
      assert.match(await details.locator('.scb-m2m-deliveries-reveal').innerText(), /Show SCB upload in the flow/);
      await screenshot(page, 'sidebar-en', { selector: '#red-ui-sidebar', readme: 'sidebar' });
    });

    it('the node link reveals the upload node in the flow', async () => {
      // The editor flashes the revealed node (Node-RED 4 on and off, 5 for 8 s): record that an upload node
      // was highlighted on the canvas at all, rather than hope to look in one of its bright moments.
      await page.evaluate(() => {
        type Editor = { nodes: { filterNodes(filter: { type: string }): Array<{ highlighted?: boolean }> } };
        const seen = globalThis as unknown as { scbRevealed?: boolean; RED: Editor };
        const check = () => {
          // Node-RED 4 marks the node's rectangle, 5 the node's group itself.
          const shown = document.querySelector(
            'g.red-ui-flow-node-group.red-ui-flow-node-highlighted, g.red-ui-flow-node-group .red-ui-flow-node-highlighted',
          );
          const upload = seen.RED.nodes.filterNodes({ type: 'scb-m2m-upload' }).some((n) => n.highlighted);
          if (shown && upload) seen.scbRevealed = true;
        };
        (seen as unknown as { scbCheck: () => void }).scbCheck = check;
        new MutationObserver(check).observe(document.body, {
          subtree: true,
          attributes: true,
          attributeFilter: ['class'],
          childList: true,
        });
      });
      await page.locator(`${ROW} .scb-m2m-deliveries-reveal`).first().click();
      // Polled too: a highlight already on (Node-RED 5 keeps it 8 s) changes no class for the observer to see.
      await page.waitForFunction(() => {
        const seen = globalThis as unknown as { scbRevealed?: boolean; scbCheck: () => void };
        seen.scbCheck();
        return seen.scbRevealed === true;
      });
    });

    it('"check now" asks SCB about a delivery its poll gave up on, and the row turns accepted', async function () {
      this.timeout(60_000);
      await inject('sidebar-send-later');
      const row = page.locator(ROW, { hasText: 'V40_2026-09.xml' });
      await row.locator('.scb-m2m-deliveries-state', { hasText: 'pending' }).waitFor({ timeout: 45_000 });
      assert.equal(await row.locator('.scb-m2m-deliveries-dot-pending').count(), 1, 'a yellow dot');
      await row.click();
      const before = simulator.stats().historyRequests;
      simulator.settleHistory();
      await row.locator('.scb-m2m-deliveries-check').click();
      await row.locator('.scb-m2m-deliveries-state', { hasText: 'accepted' }).waitFor();
      assert.equal(simulator.stats().historyRequests, before + 1, 'one history request');
      const changes = await row.locator('.scb-m2m-deliveries-changes li').allInnerTexts();
      assert.match(changes.at(-1) ?? '', /accepted: checked from the SCB sidebar/);
      assert.equal(await row.locator('.scb-m2m-deliveries-check').count(), 0, 'nothing left to check');
      await row.locator('.scb-m2m-deliveries-head').click();
    });

    it('filters by state and by text', async () => {
      await page.selectOption('.scb-m2m-deliveries-state', 'rejected');
      assert.deepEqual(await page.locator(`${ROW} .scb-m2m-deliveries-file`).allInnerTexts(), [
        'V40_2026-10_faulty.xml',
      ]);
      await page.selectOption('.scb-m2m-deliveries-state', '');
      const big = simulator.deliveries().find((d) => d.filnamn === 'V40_2026-10.xml');
      await page.fill('.scb-m2m-deliveries-search', String(big?.deliveryId));
      assert.deepEqual(await page.locator(`${ROW} .scb-m2m-deliveries-file`).allInnerTexts(), ['V40_2026-10.xml']);
      await page.fill('.scb-m2m-deliveries-search', '');
    });

    it('exports the journal as CSV', async () => {
      const download = page.waitForEvent('download');
      await page.click('.scb-m2m-deliveries-csv');
      const csv = fs.readFileSync(await (await download).path(), 'utf8');
      assert.match(csv, /^createdAt,/);
      assert.match(csv, /V40_2026-10\.xml/);
      assert.match(csv, /V40_2026-10_faulty\.xml/);
    });

    it('raised no console error from our resources', () => {
      assert.deepEqual(errors, []);
    });
  });

  describe('a user without scb-m2m-deliveries.read', () => {
    let restricted: NodeRedProcess | undefined;
    let restrictedDir: string;

    after(async function () {
      this.timeout(30_000);
      await tearDown({ nodeRed: restricted, dirs: [restrictedDir] });
    });

    it('gets no SCB tab and no menu entry for it', async function () {
      this.timeout(60_000);
      restrictedDir = makeUserDir();
      // Anyone may read the editor, but not the journal.
      const editorReads = [
        'flows.read',
        'nodes.read',
        'settings.read',
        'status.read',
        'plugins.read',
        'library.read',
        'context.read',
        'debug.read',
      ];
      restricted = await startNodeRed(restrictedDir, {
        settings: { adminAuth: { type: 'credentials', users: [], default: { permissions: editorReads } } },
      });
      const { context, page, errors } = await viewMenu(restricted);
      try {
        // The plugin is there: only the permission keeps its tab away.
        assert.equal(await page.evaluate(() => typeof RED.plugins.getPlugin('scb-m2m-deliveries')?.onadd), 'function');
        assert.equal(await page.locator('#menu-item-view-menu-scb-m2m-deliveries').count(), 0);
        assert.equal(await page.locator('.scb-m2m-deliveries').count(), 0);
        const denied = await fetch(`${restricted.base}/scb-m2m/deliveries`);
        assert.equal(denied.status, 401, 'the runtime refuses the journal too');
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  });

  describe('Swedish', () => {
    it('a Swedish browser gets the tab, its filters and the states in Swedish', async function () {
      this.timeout(60_000);
      const { context, page, errors } = await editor('sv-SE');
      try {
        await page.locator(`${ROW} .scb-m2m-deliveries-state`, { hasText: 'avvisad' }).waitFor();
        assert.deepEqual(await page.locator(`${ROW} .scb-m2m-deliveries-state`).allInnerTexts(), [
          'godkänd',
          'avvisad',
          'godkänd',
        ]);
        assert.equal(
          await page.getAttribute('.scb-m2m-deliveries-search', 'placeholder'),
          'Filtrera: fil, id, meddelande',
        );
        assert.match(await page.locator('.scb-m2m-deliveries-days').first().innerText(), /^\d+ dagar kvar$/);
        await screenshot(page, 'sidebar-sv', { selector: '#red-ui-sidebar', readme: 'sidebar-sv' });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  });
});
