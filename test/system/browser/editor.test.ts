/**
 * The editor as an integrator uses it, in a real Chromium against a real Node-RED with this
 * package installed and the real simulator behind it: the palette, a config node made by
 * uploading a .pfx, its certificate details and connection test, the "Report a folder" example
 * imported through the menu, deployed and run, and the secrets kept out of the editor.
 * The steps build on each other (one editor session), so the suite stops at the first failure.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startSimulator } from '../../../simulator';
import type { Simulator, SimulatorCertificate } from '../../../simulator/types';
import { launchChromium, screenshot, skipWithoutChromium, tearDown } from './chromium';
import { adminRequest, makeUserDir, startNodeRed, type NodeRedProcess } from '../../helpers/node-red-process';

/** What the page exposes of Node-RED's editor API (read only to check what the browser holds). */
declare const RED: {
  nodes: {
    node(id: string): { credentials?: Record<string, unknown> } | null;
    getType(type: string): { category: string };
  };
};

const ORGANISATIONSNUMMER = '9990000045';
const EXAMPLE_CONFIG_ID = 'scb-m2m-example-cfg';
const FLOW_NODE_TYPES = ['scb-m2m-heartbeat', 'scb-m2m-upload', 'scb-m2m-history', 'scb-m2m-outbox'];
const PALETTE = '#red-ui-palette-container-SCB_M2M';

describe('editor in a real browser (Chromium + Node-RED + simulator)', function () {
  this.bail(true);

  let simulator: Simulator;
  let certificate: SimulatorCertificate;
  let work: string;
  let userDir: string;
  let nodeRed: NodeRedProcess;
  let browser: Browser;
  let page: Page;
  /** Uncaught errors in the editor's JavaScript. */
  const pageErrors: string[] = [];
  /** A passphrase that cannot turn up in the page by chance. */
  const passphrase = `pw-${crypto.randomBytes(12).toString('hex')}`;
  let pfxBase64: string;
  let configId: string;

  before(async function () {
    skipWithoutChromium(this);
    this.timeout(120_000);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-m2m-browser-'));
    fs.mkdirSync(path.join(work, 'outbox'));
    simulator = await startSimulator({
      dir: path.join(work, 'simulator'),
      historyDelayMs: 0,
      clients: [
        { name: 'reporter', organisationsnummer: ORGANISATIONSNUMMER, undersokningar: ['VINN', 'KRITA'], passphrase },
      ],
    });
    certificate = simulator.certificates.reporter;
    pfxBase64 = fs.readFileSync(certificate.path).toString('base64');
    userDir = makeUserDir();
    // Where the "Report a folder" example watches and moves accepted files to.
    nodeRed = await startNodeRed(userDir, {
      env: { SCB_M2M_OUTBOX: path.join(work, 'outbox'), SCB_M2M_DONE: path.join(work, 'done') },
    });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async function () {
    this.timeout(60_000);
    await tearDown({ browser, nodeRed, simulator, dirs: [userDir, work] });
  });

  it('shows the four flow nodes under "SCB M2M" in the palette and registers the config node', async () => {
    await page.goto(nodeRed.url);
    await page.waitForSelector(`${PALETTE} .red-ui-palette-node[data-palette-type="scb-m2m-upload"]`);
    assert.equal((await page.locator(`${PALETTE} .red-ui-palette-header`).innerText()).trim(), 'SCB M2M');
    const types = await page
      .locator(`${PALETTE} .red-ui-palette-node`)
      .evaluateAll((els) => els.map((el) => el.getAttribute('data-palette-type')));
    assert.deepEqual([...types].sort(), [...FLOW_NODE_TYPES].sort());
    // A config node has no palette entry: it is made from a node's dialog, as below.
    const configCategory = await page.evaluate(() => RED.nodes.getType('scb-m2m-config').category);
    assert.equal(configCategory, 'config');
    await screenshot(page, '01-palette');
  });

  it('imports the "Report a folder" example through Menu > Import > Examples', async () => {
    await page.click('#red-ui-header-button-sidemenu');
    await page.click('#menu-item-import');
    await page.click('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a');
    const examples = page.locator('#red-ui-clipboard-dialog-import-tab-examples');
    await examples.locator('.red-ui-treeList-label-text', { hasText: '@flowreport/node-red-scb-m2m' }).click();
    await examples.locator('.red-ui-treeList-label-text', { hasText: 'Report a folder' }).click();
    await screenshot(page, '02-import-dialog');
    await page.click('#red-ui-clipboard-dialog-ok');
    // The "Imported: 1 flow, 18 nodes" notice would cover the dialogs below: read it, close it.
    const notice = page.locator('.red-ui-notification', { hasText: 'Imported' });
    assert.match(await notice.innerText(), /1 flow/);
    await notice.click();
    await notice.waitFor({ state: 'detached' });
    await page.locator('#red-ui-workspace-tabs .red-ui-tab', { hasText: 'Report a folder to SCB' }).click();
    await page.locator('g.red-ui-flow-node-group', { hasText: 'SCB upload' }).waitFor();
    await page.locator('g.red-ui-flow-node-group', { hasText: 'SCB history' }).waitFor();
    await screenshot(page, '03-example-imported');
  });

  it('creates a config node by uploading the .pfx and typing its passphrase, and shows the certificate', async () => {
    await page.locator('g.red-ui-flow-node-group', { hasText: 'SCB upload' }).dblclick();
    await page.click('#node-input-btn-config-add');
    await page.waitForSelector('#node-config-input-environment', { state: 'visible' });
    await page.fill('#node-config-input-name', 'Simulator');
    await page.selectOption('#node-config-input-environment', 'custom');
    await page.fill('#node-config-input-baseUrl', simulator.url);
    await page.fill('#node-config-input-caPath', simulator.caPath);
    await page.setInputFiles('#scb-m2m-config-file', certificate.path);
    // FileReader has turned the file into base64 once the dialog names it.
    await page.locator('#scb-m2m-config-file-name', { hasText: 'reporter.pfx' }).waitFor();
    await page.fill('#node-config-input-passphrase', passphrase);
    await page.fill('#node-config-input-organisationsnummer', ORGANISATIONSNUMMER);
    await page.fill('#node-config-input-undersokning', 'VINN');

    await page.click('#scb-m2m-config-check');
    const table = page.locator('#scb-m2m-config-certificate table.scb-m2m-config-info');
    await table.waitFor();
    const rows = await table
      .locator('tr')
      .evaluateAll((trs) =>
        Object.fromEntries(
          trs.map((tr) => [tr.querySelector('th')?.textContent ?? '', tr.querySelector('td')?.textContent ?? '']),
        ),
      );
    assert.match(rows.Subject, new RegExp(ORGANISATIONSNUMMER));
    assert.match(rows.Issuer, /SCB M2M Simulator CA/);
    const hex = (text: string) =>
      text
        .replace(/[^0-9a-f]/gi, '')
        .toLowerCase()
        .replace(/^0+/, '');
    assert.equal(hex(rows['Serial number']), hex(certificate.serialNumber));
    const daysLeft = Number(rows['Days left']);
    assert.ok(
      Number.isInteger(daysLeft) && daysLeft > 30,
      `days left should be a whole number above 30, got ${rows['Days left']}`,
    );
    assert.ok(rows['Valid from'] && rows['Valid to'], 'validity dates are shown');
    await table.locator('tr').last().scrollIntoViewIfNeeded();
    await screenshot(page, '04-config-certificate', { selector: '.red-ui-tray', readme: 'config-dialog' });
  });

  it('"Test connection" shows the simulator\'s time', async () => {
    const heartbeatsBefore = simulator.stats().heartbeats;
    const startedAt = Date.now();
    await page.click('#scb-m2m-config-test');
    const answer = page.locator(
      '#scb-m2m-config-connection .scb-m2m-config-ok, #scb-m2m-config-connection .scb-m2m-config-error',
    );
    await answer.waitFor();
    const text = await answer.innerText();
    const time = /Server time: "?([^"\s(]+)/.exec(text);
    assert.ok(time, `the dialog should show "Connected. Server time: ...", it shows: ${text}`);
    const shown = Date.parse(time[1]);
    assert.ok(Math.abs(shown - startedAt) < 60_000, `the server time ${time[1]} should be the simulator's clock (now)`);
    assert.equal(simulator.stats().heartbeats, heartbeatsBefore + 1, 'one heartbeat reached the simulator');
    await screenshot(page, '05-test-connection');
  });

  it("points the example's upload, history and outbox nodes at the new config node and deletes the placeholder", async () => {
    await page.click('#node-config-dialog-ok');
    await page.waitForSelector('#node-config-input-environment', { state: 'detached' });
    configId = await page.inputValue('#node-input-config');
    assert.notEqual(configId, EXAMPLE_CONFIG_ID);
    assert.notEqual(configId, '_ADD_');
    await page.click('#node-dialog-ok');
    await page.waitForSelector('#node-input-config', { state: 'detached' });

    for (const name of ['SCB history', 'Already waiting']) {
      await page.locator('g.red-ui-flow-node-group', { hasText: name }).dblclick();
      await page.selectOption('#node-input-config', configId);
      await page.click('#node-dialog-ok');
      await page.waitForSelector('#node-input-config', { state: 'detached' });
    }

    // The example's placeholder config is now unused: delete it in the Configuration nodes sidebar.
    await page.click('#red-ui-header-button-sidemenu');
    await page.click('#menu-item-config-nodes');
    const placeholder = page.locator('.red-ui-palette-node-config-unused', { hasText: 'SCB test: choose your .pfx' });
    await placeholder.click();
    await page.keyboard.press('Delete');
    await placeholder.waitFor({ state: 'detached' });
    await page.locator('.red-ui-palette-node-config', { hasText: 'Simulator' }).waitFor();
  });

  it('deploys, and a file dropped into the outbox ends in the debug sidebar as accepted', async () => {
    await page.click('#red-ui-header-button-deploy');
    await page.waitForSelector('#red-ui-header-button-deploy.disabled');
    const deployed = page.locator('.red-ui-notification', { hasText: 'Successfully deployed' });
    await deployed.click();
    await deployed.waitFor({ state: 'detached' });
    await page.click('#red-ui-header-button-sidemenu');
    await page.hover('#menu-item-view-menu');
    await page.click('#menu-item-view-menu-debug');

    // What a user does: save a report into the folder the example watches.
    const file = path.join(work, 'outbox', 'V40_browser.xml');
    fs.writeFileSync(file, '<?xml version="1.0" encoding="utf-8"?>\n<Report ReportingAgentCode="9990000045"/>\n');
    const result = page.locator('.red-ui-debug-content-list .red-ui-debug-msg', {
      hasText: 'ACCEPTED V40_browser.xml',
    });
    await result.waitFor({ timeout: 30_000 });
    const [delivery] = simulator.deliveries();
    assert.ok(delivery, 'the simulator received the file');
    assert.equal(delivery.filnamn, 'V40_browser.xml');
    assert.equal(delivery.organisationsnummer, ORGANISATIONSNUMMER);
    assert.equal(delivery.undersokning, 'VINN');
    // One line a person reads without opening anything: the decision, the file, survey and period, where it went (the preview cuts the path).
    assert.match(
      await result.locator('.red-ui-debug-msg-payload').innerText(),
      /^"ACCEPTED V40_browser\.xml \(VINN, \d{4}-\d{2}-\d{2}\): moved to /,
    );
    // The example then moves the accepted file to the done folder.
    const done = path.join(work, 'done', 'V40_browser.xml');
    for (const deadline = Date.now() + 10_000; !(fs.existsSync(done) && !fs.existsSync(file));) {
      if (Date.now() > deadline) throw new Error('the accepted file was not moved to the done folder within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await page.waitForFunction("document.querySelectorAll('.red-ui-popover').length === 0");
    await screenshot(page, '06-flow-and-debug', {
      readme: 'flow-accepted',
      clip: { x: 180, y: 0, width: 1100, height: 560 },
    });
    const sidebar = await page.locator('#red-ui-sidebar').boundingBox();
    assert.ok(sidebar, 'the sidebar is on screen');
    await screenshot(page, '07-debug-sidebar', {
      readme: 'debug-sidebar',
      clip: { x: sidebar.x, y: sidebar.y, width: sidebar.width, height: 340 },
    });
  });

  it('keeps the passphrase and the .pfx out of the editor after a reload', async () => {
    await page.reload();
    await page.waitForSelector(`${PALETTE} .red-ui-palette-node[data-palette-type="scb-m2m-upload"]`);
    await page.waitForFunction((id) => RED.nodes.node(id) !== null, configId);
    // A slice from the middle of the base64 would show the .pfx even if it were wrapped or cut.
    const secrets = { passphrase, pfx: pfxBase64.slice(100, 160) };
    const assertClean = (where: string, text: string) => {
      for (const [what, secret] of Object.entries(secrets))
        assert.ok(!text.includes(secret), `the ${what} must not be in ${where}`);
    };

    assertClean('the page HTML', await page.content());
    const credentials = await page.evaluate((id) => RED.nodes.node(id)?.credentials ?? {}, configId);
    assertClean("the config node's credentials in the editor", JSON.stringify(credentials));

    const flows = await adminRequest(nodeRed, 'flows');
    assert.equal(flows.status, 200);
    assertClean('GET /flows', flows.text);
    const stored = await adminRequest(nodeRed, `credentials/scb-m2m-config/${configId}`);
    assert.equal(stored.status, 200);
    assertClean(`GET /credentials/scb-m2m-config/${configId}`, stored.text);
    // The credentials are stored all the same: the editor is only told that they exist.
    assert.deepEqual(JSON.parse(stored.text), { has_pfx: true, has_passphrase: true });

    // Opening the dialog again shows the placeholder, not the passphrase.
    await page.locator('#red-ui-workspace-tabs .red-ui-tab', { hasText: 'Report a folder to SCB' }).click();
    await page.locator('g.red-ui-flow-node-group', { hasText: 'SCB upload' }).dblclick();
    await page.click('#node-input-btn-config-edit');
    await page.waitForSelector('#node-config-input-passphrase', { state: 'visible' });
    assert.equal(await page.inputValue('#node-config-input-passphrase'), '__PWRD__');
    assertClean('the reopened dialog', await page.content());
    assertClean("Node-RED's log", nodeRed.output());
    assertClean('flows_cred.json (encrypted)', fs.readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8'));
    assert.deepEqual(pageErrors, [], 'the editor raised no JavaScript errors');
  });
});
