/**
 * The example flows (examples/*.json) as a user imports them, and `npm start`
 * (scripts/start.js) as a newcomer runs it: both against the real simulator over real TLS.
 */
import * as assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { M2MClient, readCertificate } from '../../lib';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import type { NodeMessage } from 'node-red';
import { helper, messages, nextMessage, scbNodes, waitUntil, within, type FlowNode } from '../helpers/node-red';
import { runNode, type NodeProcess } from '../../scripts/process';
import { freePort } from '../helpers/util';

const ROOT = path.join(__dirname, '..', '..');
const EXAMPLES_DIR = path.join(ROOT, 'examples');
/** The Node-RED under test: the dev dependency, or SCB_M2M_NODE_RED (scripts/test-node-red-5.sh). */
const NODE_RED_DIR = process.env.SCB_M2M_NODE_RED ?? path.dirname(require.resolve('node-red/package.json'));
const CORE_DIR = path.join(
  path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [NODE_RED_DIR] })),
  'core',
);
/** Core types the test helper loads by itself when a flow uses them. */
const HELPER_PRELOADED = new Set(['catch', 'status', 'complete']);
/** The one flow-level type that is no node module: a tab (flow) holding the nodes. */
const STRUCTURAL_TYPES = new Set(['tab']);

/** Every node type that the editor files (.html) under `dir` register, with the runtime file beside each. */
function registeredTypes(dir: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.html') || entry.parentPath.includes(`${path.sep}locales`)) continue;
    const html = path.join(entry.parentPath, entry.name);
    const text = fs.readFileSync(html, 'utf8');
    for (const match of text.matchAll(/RED\.nodes\.registerType\(\s*["']([^"']+)["']/g))
      types.set(match[1], html.replace(/\.html$/, '.js'));
  }
  return types;
}

const CORE_TYPES = registeredTypes(CORE_DIR);
const OUR_TYPES = registeredTypes(path.join(ROOT, 'nodes'));
const EXAMPLE_FILES = fs
  .readdirSync(EXAMPLES_DIR)
  .filter((name) => name.endsWith('.json'))
  .sort();

function readExample(name: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(EXAMPLES_DIR, name), 'utf8')) as FlowNode[];
}

const SECRET_NAME = /pfx|p12|passphrase|password|secret|private|token|credential|keydata/i;

/** Where a value in a flow looks like a secret: credentials, a key-like property with a value, PEM or a long base64 run. */
function secretsIn(value: unknown, where: string): string[] {
  if (typeof value === 'string') {
    return /-----BEGIN|[A-Za-z0-9+/]{100,}={0,2}/.test(value) ? [`${where} holds PEM or base64 data`] : [];
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => secretsIn(item, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, inner]) => {
      const at = `${where}.${key}`;
      if (key === 'credentials' || (SECRET_NAME.test(key) && inner !== '' && inner !== undefined))
        return [`${at} is set`];
      return secretsIn(inner, at);
    });
  }
  return [];
}

const IMPORT_TAB = 'imported';

/**
 * The example as it runs once imported: the editor puts nodes that come without a tab on the
 * current one, and only its config node changed by the user to point at the simulator.
 */
function asImported(flow: FlowNode[], simulator: Simulator) {
  const needsTab = (n: FlowNode) => n.z === undefined && n.type !== 'scb-m2m-config' && n.type !== 'tab';
  if (flow.some(needsTab))
    flow = [
      { id: IMPORT_TAB, type: 'tab', label: 'imported' },
      ...flow.map((n) => (needsTab(n) ? { ...n, z: IMPORT_TAB } : n)),
    ];
  const configs = flow.filter((n) => n.type === 'scb-m2m-config');
  assert.equal(configs.length, 1, 'one config node');
  const certificate = simulator.certificates.valid;
  Object.assign(configs[0], {
    environment: 'custom',
    baseUrl: simulator.url,
    certPath: certificate.path,
    caPath: simulator.caPath,
    organisationsnummer: certificate.organisationsnummer,
    undersokning: 'VINN',
  });
  return { flow, credentials: { [configs[0].id]: { passphrase: certificate.passphrase } } };
}

/** Loads an example with our real nodes and the core nodes it uses, pointed at the simulator (and changed by `edit`, as a user would). */
async function loadExample(name: string, simulator: Simulator, edit?: (flow: FlowNode[]) => void): Promise<void> {
  const { flow, credentials } = asImported(readExample(name), simulator);
  edit?.(flow);
  const coreFiles = new Set(
    flow
      .filter((n) => CORE_TYPES.has(n.type) && !HELPER_PRELOADED.has(n.type))
      .map((n) => CORE_TYPES.get(n.type) as string),
  );

  const coreModules = [...coreFiles].map((file) => require(file) as unknown);
  await helper.load([...scbNodes, ...coreModules], flow, credentials);
}

/**
 * The watch node watches a moment after it starts. Probe with a dot-file, which the flow's
 * filter drops, until the watch node reports it.
 */
async function watching(outbox: string, settleId = '02-settle'): Promise<void> {
  const probe = path.join(outbox, '.probe');
  let seen = false;
  helper.getNode(settleId).on('input', (msg: NodeMessage) => {
    if (msg.filename === probe) seen = true;
  });
  const deadline = Date.now() + 5000;
  while (!seen) {
    if (Date.now() > deadline) throw new Error(`the watch node reported no change in ${outbox} within 5 s`);
    fs.writeFileSync(probe, 'probe');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  fs.rmSync(probe);
}

/** A chat's incoming webhook on 127.0.0.1, answering every POST with `status`: what it received. */
async function startWebhook(status: number) {
  const posts: Array<{ method?: string; path?: string; contentType?: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      posts.push({ method: req.method, path: req.url, contentType: req.headers['content-type'], body });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no such webhook');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    posts,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const isFile = (file: string) => fs.existsSync(file) && fs.statSync(file).isFile();

describe('example flows', function () {
  this.timeout(30_000);

  it('are the three examples of the node issue and the three of the polish issue', () => {
    assert.deepEqual(EXAMPLE_FILES, [
      '01 - Check the connection.json',
      '02 - Report a folder.json',
      '03 - List the history.json',
      '04 - Certificate expiry reminder.json',
      '05 - Notify on the result.json',
      "06 - SCB's folder layout.json",
    ]);
  });

  for (const name of EXAMPLE_FILES) {
    describe(name, () => {
      const flow = readExample(name);
      const ids = new Set(flow.map((n) => n.id));

      it('uses only our node types and core ones that Node-RED registers', () => {
        assert.ok(
          CORE_TYPES.has('file in') && CORE_TYPES.has('watch') && OUR_TYPES.size === 5,
          'the registered types were found',
        );
        const unknown = flow.filter(
          (n) => !CORE_TYPES.has(n.type) && !OUR_TYPES.has(n.type) && !STRUCTURAL_TYPES.has(n.type),
        );
        assert.deepEqual(
          unknown.map((n) => `${n.id}: ${n.type}`),
          [],
        );
      });

      it('is wired to nodes that exist, with unique ids', () => {
        assert.equal(ids.size, flow.length, 'unique ids');
        const dangling: string[] = [];
        for (const n of flow) {
          for (const target of (n.wires ?? []).flat()) if (!ids.has(target)) dangling.push(`${n.id} → ${target}`);
          for (const target of (Array.isArray(n.scope) ? n.scope : []) as string[])
            if (!ids.has(target)) dangling.push(`${n.id} scope ${target}`);
          if (typeof n.config === 'string' && flow.find((c) => c.id === n.config)?.type !== 'scb-m2m-config')
            dangling.push(`${n.id} config ${n.config}`);
          if (n.z !== undefined && flow.find((t) => t.id === n.z)?.type !== 'tab')
            dangling.push(`${n.id} tab ${String(n.z)}`);
        }
        assert.deepEqual(dangling, []);
      });

      it('explains itself in a comment node', () => {
        const comments = flow.filter((n) => n.type === 'comment');
        assert.ok(
          comments.length >= 1 && comments.every((c) => String(c.info).includes('## What to set')),
          'a comment with "What to set"',
        );
      });

      it('sends the reader to the dialog fields by the names the editor shows', () => {
        const label = (type: string) =>
          (
            JSON.parse(
              fs.readFileSync(path.join(ROOT, 'nodes', type, 'locales', 'en-US', `${type}.json`), 'utf8'),
            ) as Record<string, { label: { config: string } }>
          )[type].label.config;
        for (const comment of flow.filter((n) => n.type === 'comment')) {
          for (const [, field] of String(comment.info).matchAll(/pencil next to \*([^*]+)\*/g)) {
            assert.ok(
              ['scb-m2m-heartbeat', 'scb-m2m-upload', 'scb-m2m-history'].every((type) => label(type) === field),
              `"${field}" is the config field's label`,
            );
          }
        }
      });

      it('holds no credentials or secret-looking values, and its config node points at nothing secret', () => {
        assert.deepEqual(secretsIn(flow, 'flow'), []);
        for (const config of flow.filter((n) => n.type === 'scb-m2m-config')) {
          assert.equal(config.certPath, '', 'no certificate path');
          assert.equal(config.certName, '', 'no uploaded certificate');
          assert.equal(config.caPath, '', 'no CA file');
          assert.notEqual(config.environment, 'custom', 'an SCB environment, no custom server');
        }
      });
    });
  }

  it('share one config node id, so importing a second example reuses the configured certificate', () => {
    const configIds = new Set(
      EXAMPLE_FILES.flatMap((name) =>
        readExample(name)
          .filter((n) => n.type === 'scb-m2m-config')
          .map((n) => n.id),
      ),
    );
    assert.equal(configIds.size, 1);
  });

  describe('run against the simulator', () => {
    let simulator: Simulator;
    let dir: string;
    const savedEnv = Object.fromEntries(
      ['SCB_M2M_OUTBOX', 'SCB_M2M_DONE', 'SCB_M2M_REJECTED', 'SCB_M2M_WEBHOOK_URL', 'HOME'].map((name) => [
        name,
        process.env[name],
      ]),
    );

    before(async () => {
      // Decided at the first history request, so a poll ends at once.
      simulator = await startSimulator({ historyDelayMs: 0 });
    });
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-examples-test-'));
    });
    afterEach(async () => {
      await helper.unload();
      simulator.faults.clear();
      for (const [name, value] of Object.entries(savedEnv)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    });
    after(async () => {
      await simulator.stop();
      fs.rmSync(simulator.dir, { recursive: true, force: true });
    });

    it('01: the inject button runs a heartbeat and the debug node shows payload.ok', async () => {
      await loadExample('01 - Check the connection.json', simulator);
      const shown = nextMessage('01-connected');
      helper.getNode('01-inject').receive({});
      const msg = await within(shown, 10_000, 'the heartbeat result at the debug node');
      const payload = msg.payload as { ok: boolean; serverTime: string; statusCode: number };
      assert.equal(payload.ok, true);
      assert.equal(payload.statusCode, 200);
      assert.ok(payload.serverTime.length > 0, 'the server time');
    });

    it('01: a refused heartbeat reaches the Catch path and its debug node', async () => {
      await loadExample('01 - Check the connection.json', simulator);
      let connected = 0;
      helper.getNode('01-connected').on('input', () => connected++);
      simulator.faults.failNext(1, { status: 401, match: /heartbeat/ });
      const failed = nextMessage('01-failed');
      helper.getNode('01-inject').receive({});
      const msg = await within(failed, 10_000, 'the failure at the catch path');
      assert.match(String((msg.error as { message?: string }).message), /\S/);
      assert.equal(msg.statusCode, 401);
      assert.equal(connected, 0, 'nothing on the success path');
    });

    /** Example 02 loaded on a new outbox (watched) and done folder. */
    /** `loaded` runs as soon as the flow is (files waiting in the outbox are listed a moment later). */
    async function reportAFolder(loaded?: () => void): Promise<{ outbox: string; done: string }> {
      const outbox = path.join(dir, 'outbox');
      const done = path.join(dir, 'done');
      fs.mkdirSync(outbox, { recursive: true });
      process.env.SCB_M2M_OUTBOX = outbox;
      process.env.SCB_M2M_DONE = done;
      await loadExample('02 - Report a folder.json', simulator);
      loaded?.();
      await watching(outbox);
      return { outbox, done };
    }

    it('02: each file saved into the outbox is uploaded once; accepted ones move to done, rejected and failed ones stay', async () => {
      const { outbox, done } = await reportAFolder();

      const toUpload: string[] = [];
      helper.getNode('02-fields').on('input', (msg: NodeMessage) => toUpload.push(String(msg.filename)));
      const ok = path.join(outbox, 'V40_ok.xml');
      const rejected = path.join(outbox, 'V40_rejected.xml');
      const failing = path.join(outbox, 'V40_fail.xml');
      // The move deletes the accepted file from the outbox: that event too passes the settle step, and stops at the filter.
      const removal = new Promise<void>((resolve) =>
        helper.getNode('02-files-only').on('input', (msg: NodeMessage) => {
          if (msg.filename === ok && msg.type === 'none') resolve();
        }),
      );
      const results = messages('02-result', 3);
      simulator.faults.failNext(1, { status: 401, match: /V40_fail\.xml/ });

      // Written in pieces, as a copy of a larger file is: several change events for one file.
      const content = '<?xml version="1.0"?>\n<Report ReportingAgentCode="9990000045">\n  <Holder/>\n</Report>\n';
      for (const part of content.match(/[^\n]*\n/g) ?? []) fs.appendFileSync(ok, part);
      fs.writeFileSync(rejected, '<Report><!-- SIMULATE-REJECT --></Report>\n');
      fs.writeFileSync(failing, '<Report/>\n');

      const byStatus = new Map(
        (await within(results, 20_000, 'three results at the debug node')).map((m) => [
          (m.result as { status: string }).status,
          m,
        ]),
      );
      const resultOf = (status: string) => byStatus.get(status)?.result as Record<string, unknown> | undefined;
      const lineOf = (status: string) => String(byStatus.get(status)?.payload);
      assert.equal(resultOf('accepted')?.file, ok);
      assert.equal(resultOf('accepted')?.movedTo, path.join(done, 'V40_ok.xml'));
      assert.equal(
        lineOf('accepted'),
        `ACCEPTED V40_ok.xml (VINN, ${String(byStatus.get('accepted')?.referensperiod)}): moved to ${done}`,
        'one line a person reads',
      );
      assert.equal(resultOf('rejected')?.file, rejected);
      assert.match(
        lineOf('rejected'),
        /^REJECTED V40_rejected\.xml \(VINN, \d{4}-\d\d-\d\d\): .*SIMULATE-REJECT.*It stays in the outbox/,
        "SCB's reason in the line",
      );
      assert.equal(resultOf('failed')?.file, failing);
      assert.equal(resultOf('failed')?.statusCode, 401);
      assert.match(
        lineOf('failed'),
        /^NOT DELIVERED V40_fail\.xml: .+ fix the cause, then save it again\.$/,
        'the reason and what to do',
      );

      await waitUntil(
        () => isFile(path.join(done, 'V40_ok.xml')) && !fs.existsSync(ok),
        'the accepted file moved to done',
        10_000,
      );
      assert.equal(fs.readFileSync(path.join(done, 'V40_ok.xml'), 'utf8'), content, 'moved intact');
      await within(removal, 10_000, 'the removal event filtered out');
      assert.deepEqual(fs.readdirSync(done), ['V40_ok.xml']);
      assert.ok(isFile(rejected) && isFile(failing), 'rejected and failed files stay in the outbox');
      assert.deepEqual(toUpload.sort(), [failing, ok, rejected], 'each file went to the upload once');
      const delivered = simulator
        .deliveries()
        .map((d) => d.filnamn)
        .sort();
      assert.deepEqual(
        delivered,
        ['V40_ok.xml', 'V40_rejected.xml'],
        'one delivery each at the simulator; none for the refused one',
      );
    });

    it('02: the same file saved again after it was accepted is not sent twice; a history failure says "delivered, result unknown"', async () => {
      const { outbox } = await reportAFolder();
      const content = '<Report ReportingAgentCode="9990000045"><Holder n="twice"/></Report>\n';
      const first = messages('02-result', 1);
      fs.writeFileSync(path.join(outbox, 'V40_twice.xml'), content);
      assert.match(String((await within(first, 20_000, 'the first result'))[0].payload), /^ACCEPTED V40_twice\.xml/);
      const delivered = simulator.deliveries().length;

      const again = messages('02-result', 1);
      fs.writeFileSync(path.join(outbox, 'V40_twice.xml'), content);
      const [refused] = await within(again, 20_000, 'the second result');
      assert.match(String(refused.payload), /^NOT SENT AGAIN V40_twice\.xml: /);
      assert.equal((refused.result as { code: string }).code, 'ALREADY_DELIVERED');
      assert.equal(simulator.deliveries().length, delivered, 'nothing sent the second time');

      simulator.faults.failNext(50, { status: 401, match: /history/ });
      const unknown = messages('02-result', 1);
      fs.writeFileSync(path.join(outbox, 'V40_unknown.xml'), '<Report n="unknown"/>\n');
      const [result] = await within(unknown, 20_000, 'the history failure');
      assert.match(
        String(result.payload),
        /^DELIVERED, RESULT UNKNOWN V40_unknown\.xml \(uploadId [\w-]+\): .+ Do not send it again/,
      );
      assert.ok(isFile(path.join(outbox, 'V40_unknown.xml')), 'the file stays in the outbox');
    });

    it('02: files waiting in the outbox when the flow starts are sent once; a redeploy leaves those on record alone', async () => {
      const outbox = path.join(dir, 'outbox');
      fs.mkdirSync(outbox);
      // Saved while Node-RED was stopped: no watch sees them.
      const waiting = path.join(outbox, 'V40_waiting.xml');
      const rejected = path.join(outbox, 'V40_waiting_rejected.xml');
      fs.writeFileSync(waiting, '<Report ReportingAgentCode="9990000045"><Holder n="waiting"/></Report>\n');
      fs.writeFileSync(rejected, '<Report><!-- SIMULATE-REJECT --></Report>\n');
      fs.writeFileSync(path.join(outbox, 'V40_half.xml.part'), 'still being written');
      const before = simulator.deliveries().length;
      let first: Promise<NodeMessage[]> | undefined;
      await reportAFolder(() => (first = messages('02-result', 2)));
      const results = (await within(first as Promise<NodeMessage[]>, 20_000, 'a result for each waiting file')).map(
        (m) => m.result as { status: string; file: string },
      );
      assert.deepEqual(results.map((r) => `${r.status} ${path.basename(r.file)}`).sort(), [
        'accepted V40_waiting.xml',
        'rejected V40_waiting_rejected.xml',
      ]);
      assert.equal(simulator.deliveries().length, before + 2);

      // A redeploy: the rejected file still waits, unchanged and on record; another was saved meanwhile.
      await helper.unload();
      const saved = path.join(outbox, 'V40_saved_meanwhile.xml');
      fs.writeFileSync(saved, '<Report ReportingAgentCode="9990000045"><Holder n="meanwhile"/></Report>\n');
      const toUpload: string[] = [];
      let next: Promise<NodeMessage[]> | undefined;
      await reportAFolder(() => {
        helper.getNode('02-fields').on('input', (msg: NodeMessage) => toUpload.push(String(msg.filename)));
        next = messages('02-result', 1);
      });
      const [result] = await within(next as Promise<NodeMessage[]>, 20_000, 'the result for the file saved meanwhile');
      assert.match(String(result.payload), /^ACCEPTED V40_saved_meanwhile\.xml/);
      assert.deepEqual(toUpload, [saved], 'the rejected file on record is not sent again');
      assert.equal(simulator.deliveries().length, before + 3);
      assert.ok(isFile(rejected), 'the rejected file stays in the outbox until it is saved again');
    });

    it('02: without SCB_M2M_OUTBOX it watches ~/scb-m2m/outbox', async () => {
      delete process.env.SCB_M2M_OUTBOX;
      process.env.HOME = dir;
      fs.mkdirSync(path.join(dir, 'scb-m2m', 'outbox'), { recursive: true });
      await loadExample('02 - Report a folder.json', simulator);
      assert.deepEqual((helper.getNode('02-watch') as unknown as { files: string[] }).files, [`${dir}/scb-m2m/outbox`]);
    });

    it('04: a certificate far from its expiry passes as OK, no warning', async () => {
      await loadExample('04 - Certificate expiry reminder.json', simulator);
      let warnings = 0;
      helper.getNode('04-warning').on('input', () => warnings++);
      const ok = nextMessage('04-ok');
      helper.getNode('04-inject').receive({});
      const msg = await within(ok, 10_000, 'the heartbeat at "Certificate OK"');
      const { info } = await readCertificate(simulator.certificates.valid);
      assert.ok(info.daysLeft > 30, `the simulator's certificate has ${info.daysLeft} days left`);
      assert.equal((msg.certificate as { daysLeft: number }).daysLeft, info.daysLeft);
      assert.equal(warnings, 0);
    });

    it('04: within the days set in "Expires soon?", one line a person reads: days left, the date, the subject', async () => {
      const { info } = await readCertificate(simulator.certificates.valid);
      // The user sets the warning further out than this certificate's days left.
      await loadExample('04 - Certificate expiry reminder.json', simulator, (flow) => {
        const soon = flow.find((n) => n.id === '04-soon') as FlowNode & { rules: Array<{ v?: string }> };
        soon.rules[0].v = String(info.daysLeft + 1);
      });
      let passed = 0;
      helper.getNode('04-ok').on('input', () => passed++);
      const warning = nextMessage('04-warning');
      helper.getNode('04-inject').receive({});
      const msg = await within(warning, 10_000, 'the warning');
      assert.equal(
        msg.payload,
        `The SCB certificate expires in ${info.daysLeft} days (${info.validTo}): order a new one from SCB. ${info.subject}`,
      );
      assert.equal(passed, 0);
    });

    it('04: runs once a day, and a failed heartbeat reaches "Why it failed"', async () => {
      const inject = readExample('04 - Certificate expiry reminder.json').find((n) => n.id === '04-inject');
      assert.match(String(inject?.crontab), /^\d+ \d+ \* \* \*$/, 'a daily crontab');
      await loadExample('04 - Certificate expiry reminder.json', simulator);
      simulator.faults.failNext(1, { status: 401, match: /heartbeat/ });
      const failed = nextMessage('04-failed');
      helper.getNode('04-inject').receive({});
      const msg = await within(failed, 10_000, 'the failure');
      assert.equal(msg.statusCode, 401);
    });

    it('03: the inject button lists the history, with an upload made before', async () => {
      const certificate = simulator.certificates.valid;
      const client = await M2MClient.create({
        environment: 'custom',
        baseUrl: simulator.url,
        ca: simulator.caPem,
        certificate: { path: certificate.path, passphrase: certificate.passphrase },
      });
      const upload = await client
        .upload({
          organisationsnummer: certificate.organisationsnummer,
          undersokning: 'VINN',
          referensperiod: '2026-06-30',
          filformat: 'V40',
          filnamn: 'V40_listed.xml',
          source: { buffer: Buffer.from('<Report/>') },
        })
        .finally(() => client.close());

      await loadExample('03 - List the history.json', simulator);
      const listed = nextMessage('03-list');
      helper.getNode('03-inject').receive({});
      const msg = await within(listed, 10_000, 'the list at the debug node');
      assert.equal(msg.scbStatus, 'accepted');
      assert.ok(Array.isArray(msg.payload), 'a list');
      assert.ok(
        (msg.payload as Array<{ id?: string }>).some((record) => record.id === upload.uploadId),
        'the earlier upload is listed',
      );
    });

    it("05: each decision is posted once to the chat webhook as one readable line; a rejection carries SCB's reason", async () => {
      const outbox = path.join(dir, 'outbox');
      const done = path.join(dir, 'done');
      fs.mkdirSync(outbox);
      const chat = await startWebhook(200);
      try {
        Object.assign(process.env, {
          SCB_M2M_OUTBOX: outbox,
          SCB_M2M_DONE: done,
          SCB_M2M_WEBHOOK_URL: `${chat.url}/hooks/scb`,
        });
        await loadExample('05 - Notify on the result.json', simulator);
        await watching(outbox, '05-settle');
        let toChat = 0;
        helper.getNode('05-chat').on('input', () => toChat++);
        const posted = messages('05-posted', 2);
        const ok = path.join(outbox, 'V40_notify_ok.xml');
        fs.writeFileSync(ok, '<Report ReportingAgentCode="9990000045"><Holder n="notify"/></Report>\n');
        fs.writeFileSync(
          path.join(outbox, 'V40_notify_rejected.xml'),
          '<Report n="notify"><!-- SIMULATE-REJECT --></Report>\n',
        );

        const answered = await within(posted, 20_000, 'two posts the chat answered');
        await waitUntil(
          () => isFile(path.join(done, 'V40_notify_ok.xml')) && !fs.existsSync(ok),
          'the accepted file moved to done',
          10_000,
        );
        assert.equal(chat.posts.length, 2, 'one post per decision');
        assert.equal(toChat, 2, 'nothing else on its way to the chat');
        for (const post of chat.posts) {
          assert.equal(post.method, 'POST');
          assert.equal(post.path, '/hooks/scb');
          assert.match(post.contentType ?? '', /^application\/json/);
        }
        const texts = chat.posts.map((post) => (JSON.parse(post.body) as { text: string }).text).sort();
        const period = String(answered[0].referensperiod);
        assert.match(period, /^\d{4}-\d\d-\d\d$/);
        assert.equal(texts[0], `ACCEPTED V40_notify_ok.xml (VINN, ${period}): moved to ${done}`);
        assert.match(
          texts[1],
          /^REJECTED V40_notify_rejected\.xml \(VINN, \d{4}-\d\d-\d\d\): .*SIMULATE-REJECT.*It stays in the outbox/,
          "SCB's reason in the post",
        );
        assert.deepEqual(answered.map((m) => m.line).sort(), texts, 'the posted lines are the ones the chat answered');
      } finally {
        await chat.close();
      }
    });

    it('05: a chat that refuses the post, or no webhook URL set, gives a NOT NOTIFIED line', async () => {
      const outbox = path.join(dir, 'outbox');
      fs.mkdirSync(outbox);
      const chat = await startWebhook(404);
      try {
        Object.assign(process.env, {
          SCB_M2M_OUTBOX: outbox,
          SCB_M2M_DONE: path.join(dir, 'done'),
          SCB_M2M_WEBHOOK_URL: `${chat.url}/hooks/gone`,
        });
        await loadExample('05 - Notify on the result.json', simulator);
        await watching(outbox, '05-settle');
        const refused = messages('05-result', 2);
        fs.writeFileSync(path.join(outbox, 'V40_notify_refused.xml'), '<Report n="refused"/>\n');
        const lines = (await within(refused, 20_000, 'the decision and the refusal')).map((m) => String(m.payload));
        assert.match(lines[0], /^ACCEPTED V40_notify_refused\.xml /);
        assert.equal(
          lines[1],
          `NOT NOTIFIED: the chat answered 404 to: ${lines[0]}. Check the webhook URL (SCB_M2M_WEBHOOK_URL or this tab's WEBHOOK_URL).`,
        );
        assert.equal(chat.posts.length, 1);
        await helper.unload();

        delete process.env.SCB_M2M_WEBHOOK_URL;
        await loadExample('05 - Notify on the result.json', simulator);
        await watching(outbox, '05-settle');
        const unset = messages('05-result', 2);
        fs.writeFileSync(path.join(outbox, 'V40_notify_unset.xml'), '<Report n="unset"/>\n');
        const [decision, notNotified] = (await within(unset, 20_000, 'the decision and the missing URL')).map((m) =>
          String(m.payload),
        );
        assert.match(decision, /^ACCEPTED V40_notify_unset\.xml /);
        assert.match(
          notNotified,
          /^NOT NOTIFIED: .+ \(ACCEPTED V40_notify_unset\.xml .+\)\. Check the webhook URL \(SCB_M2M_WEBHOOK_URL or this tab's WEBHOOK_URL\) and that Node-RED can reach the chat\.$/,
        );
        assert.equal(chat.posts.length, 1, 'nothing posted without a URL');
      } finally {
        await chat.close();
      }
    });

    it("06: files in SCB's folder layout go with the fields of their folders, with and without version; accepted ones move under done, rejected ones under rejected; a misplaced file is reported, not sent", async () => {
      const outbox = path.join(dir, 'outbox');
      const done = path.join(dir, 'done');
      const rejectedDir = path.join(dir, 'rejected');
      fs.mkdirSync(outbox);
      Object.assign(process.env, { SCB_M2M_OUTBOX: outbox, SCB_M2M_DONE: done, SCB_M2M_REJECTED: rejectedDir });
      await loadExample("06 - SCB's folder layout.json", simulator);
      await watching(outbox, '06-settle');
      const org = simulator.certificates.valid.organisationsnummer;
      const plain = path.join(org, 'VINN', '2026-10-31', 'V40');
      const versioned = path.join(org, 'VINN', '2026-09-30', 'V40', '2');
      const misplaced = path.join(org, 'VINN');
      const results = messages('06-result', 3);
      // New folders with a file in them at once, as a copy of a folder tree makes them.
      for (const folder of [plain, versioned, misplaced]) fs.mkdirSync(path.join(outbox, folder), { recursive: true });
      fs.writeFileSync(
        path.join(outbox, plain, 'V40_layout.xml'),
        '<Report ReportingAgentCode="9990000045"><Holder n="layout"/></Report>\n',
      );
      fs.writeFileSync(
        path.join(outbox, versioned, 'V40_layout_rejected.xml'),
        '<Report n="layout"><!-- SIMULATE-REJECT --></Report>\n',
      );
      fs.writeFileSync(path.join(outbox, misplaced, 'V40_layout_lost.xml'), '<Report n="lost"/>\n');

      const byTopic = new Map(
        (await within(results, 20_000, 'three results')).map((m) => [m.topic, String(m.payload)]),
      );
      assert.equal(
        byTopic.get('accepted'),
        `ACCEPTED V40_layout.xml (${org}, VINN, 2026-10-31, V40): moved to ${path.join(done, plain)}`,
      );
      const rejectedLine = byTopic.get('rejected') ?? '';
      assert.match(
        rejectedLine,
        new RegExp(`^REJECTED V40_layout_rejected\\.xml \\(${org}, VINN, 2026-09-30, V40, 2\\): .*SIMULATE-REJECT`),
        "SCB's reason",
      );
      assert.ok(
        rejectedLine.endsWith(
          `. Moved to ${path.join(rejectedDir, versioned)}: correct it and save it into the outbox again.`,
        ),
        rejectedLine,
      );
      assert.equal(
        byTopic.get('not in the layout'),
        `NOT SENT ${org}/VINN/V40_layout_lost.xml: it is not in SCB's folder layout, so what it reports is unknown. Move it to ${outbox}/{organisationsnummer}/{undersokning}/{referensperiod}/{filformat}/[{version}/]V40_layout_lost.xml.`,
      );

      assert.ok(
        isFile(path.join(done, plain, 'V40_layout.xml')) && !fs.existsSync(path.join(outbox, plain, 'V40_layout.xml')),
        'accepted: moved under done, same folders',
      );
      assert.ok(
        isFile(path.join(rejectedDir, versioned, 'V40_layout_rejected.xml')) &&
          !fs.existsSync(path.join(outbox, versioned, 'V40_layout_rejected.xml')),
        'rejected: moved under rejected, same folders',
      );
      assert.ok(isFile(path.join(outbox, misplaced, 'V40_layout_lost.xml')), 'the misplaced file stays');
      const delivered = simulator
        .deliveries()
        .filter((d) => d.filnamn.startsWith('V40_layout'))
        .map(({ filnamn, organisationsnummer, undersokning, referensperiod, filformat, version }) => ({
          filnamn,
          organisationsnummer,
          undersokning,
          referensperiod,
          filformat,
          version,
        }))
        .sort((a, b) => (a.filnamn < b.filnamn ? -1 : 1));
      assert.deepEqual(
        delivered,
        [
          {
            filnamn: 'V40_layout.xml',
            organisationsnummer: org,
            undersokning: 'VINN',
            referensperiod: '2026-10-31',
            filformat: 'V40',
            version: undefined,
          },
          {
            filnamn: 'V40_layout_rejected.xml',
            organisationsnummer: org,
            undersokning: 'VINN',
            referensperiod: '2026-09-30',
            filformat: 'V40',
            version: '2',
          },
        ],
        'the fields from the folders; nothing for the misplaced file',
      );
    });
  });
});

describe('npm start (scripts/start.js)', function () {
  this.timeout(60_000);
  const script = path.join(ROOT, 'scripts', 'start.js');
  let demo: string;
  const children = new Set<ChildProcess>();

  beforeEach(() => {
    demo = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-demo-test-'));
  });
  afterEach(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.clear();
    fs.rmSync(demo, { recursive: true, force: true });
  });

  function startDemo(port: number, args: string[] = []): NodeProcess {
    const run = runNode(script, args, {
      cwd: ROOT,
      env: { SCB_M2M_DEMO_DIR: demo, SCB_M2M_PORT: String(port), SCB_M2M_SIMULATOR_PORT: '0' },
    });
    children.add(run.child);
    return run;
  }

  async function ready(demoRun: NodeProcess): Promise<{ editor: string; simulatorUrl: string }> {
    const [, editor] = await demoRun.waitFor(/demo ready at (\S+)/, 40_000, 'npm start to be ready');
    const simulatorUrl = /SCB simulator: (\S+)/.exec(demoRun.output())?.[1] ?? '';
    return { editor, simulatorUrl };
  }

  async function refusesConnections(url: string): Promise<boolean> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve) => {
      const socket = net.connect(Number(port), hostname);
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
  }

  /** An admin API request as the editor makes it. */
  function admin(editor: string, route: string, init: RequestInit = {}): Promise<Response> {
    return fetch(new URL(route, editor), {
      ...init,
      headers: { 'content-type': 'application/json', 'node-red-api-version': 'v1', 'node-red-deployment-type': 'full' },
    });
  }

  async function tabLabel(editor: string): Promise<string> {
    const flows = (await (await admin(editor, 'flows')).json()) as FlowNode[];
    return String(flows.find((n) => n.type === 'tab')?.label);
  }

  async function stop(demoRun: NodeProcess, urls: string[]): Promise<void> {
    demoRun.child.kill('SIGINT');
    assert.equal(await within(demoRun.exited, 15_000, 'npm start exiting after SIGINT'), 0, demoRun.output());
    for (const url of urls) assert.ok(await refusesConnections(url), `${url} is closed`);
    assert.ok(!fs.existsSync(path.join(demo, 'npm-start.pid')), 'the demo folder lock is released');
  }

  it('runs the simulator and Node-RED with the demo flow: a dropped sample ends accepted in done; SIGINT stops everything; a restart works again', async () => {
    const port = await freePort();
    const outbox = path.join(demo, 'outbox');
    const done = path.join(demo, 'done');
    const simulatorUrls: string[] = [];
    for (const round of [1, 2]) {
      const run = startDemo(port);
      const { editor, simulatorUrl } = await ready(run);
      simulatorUrls.push(simulatorUrl);
      assert.equal(editor, `http://127.0.0.1:${port}/`);
      assert.match(
        run.output(),
        round === 1 ? /example is deployed/ : /Kept from the last run/,
        'it says what it kept',
      );
      const { version } = JSON.parse(fs.readFileSync(path.join(NODE_RED_DIR, 'package.json'), 'utf8')) as {
        version: string;
      };
      assert.ok(run.output().includes(`Node-RED version: v${version}`), `it runs Node-RED ${version}`);
      assert.ok(run.output().includes(outbox), 'it names the outbox');
      const editorPage = await fetch(editor);
      assert.equal(editorPage.status, 200, 'the editor is served');
      // What the editor's Import > Examples menu lists for this package.
      const examples = await fetch(new URL('library/examples/flows/@flowreport/node-red-scb-m2m/', editor));
      assert.deepEqual(
        await examples.json(),
        EXAMPLE_FILES.map((name) => ({ fn: name.replace(/\.json$/, '') })),
      );

      fs.copyFileSync(path.join(demo, 'samples', 'V40_example.xml'), path.join(outbox, `V40_round${round}.xml`));
      fs.copyFileSync(path.join(demo, 'samples', 'V40_rejected.xml'), path.join(outbox, `V40_rejected${round}.xml`));
      // The flow writes the file into done, then deletes it from the outbox: wait for both.
      await waitUntil(
        () =>
          isFile(path.join(done, `V40_round${round}.xml`)) &&
          !fs.existsSync(path.join(outbox, `V40_round${round}.xml`)),
        `round ${round}: the sample accepted, moved to done and gone from the outbox`,
        30_000,
      );
      await run.waitFor(
        new RegExp(`REJECTED V40_rejected${round}\\.xml`),
        30_000,
        `round ${round}: the rejection logged`,
      );
      assert.ok(isFile(path.join(outbox, `V40_rejected${round}.xml`)), 'the rejected sample stays in the outbox');

      const userDir = path.join(demo, 'node-red');
      const flows = fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8');
      assert.deepEqual(secretsIn(JSON.parse(flows), 'flows.json'), [], 'no secret in flows.json');
      const storedCredentials = JSON.parse(fs.readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      assert.deepEqual(Object.keys(storedCredentials), ['$'], 'credentials stored encrypted');
      assert.doesNotMatch(run.output(), /passphrase['"]?\s*[:=]\s*['"]?simulator/i, 'the passphrase is never printed');

      await stop(run, [editor, simulatorUrl]);
    }
    assert.equal(fs.readdirSync(path.join(demo, 'simulator', 'deliveries')).length, 4, 'two deliveries per round');
    assert.equal(simulatorUrls[1], simulatorUrls[0], 'the simulator kept its port');
  });

  it('answers a request made at the earliest moment: 503 "starting" with Retry-After, then the editor', async () => {
    const port = await freePort();
    const run = startDemo(port);
    const url = `http://127.0.0.1:${port}/`;
    // The first request that finds the port open, and a browser's right after it.
    let first: Response | undefined;
    while (!first) {
      first = await within(
        fetch(new URL('flows', url)).catch((err: Error & { cause?: { code?: string } }) => {
          if (err.cause?.code !== 'ECONNREFUSED') throw err;
          return undefined;
        }),
        10_000,
        'an answer to the first request',
      );
      if (run.child.exitCode !== null) throw new Error(`npm start exited:\n${run.output()}`);
    }
    const browser = await within(
      fetch(url, { headers: { accept: 'text/html,application/xhtml+xml' } }),
      10_000,
      "an answer to the browser's request",
    );
    assert.equal(first.status, 503, 'not ready yet: 503');
    assert.equal(first.headers.get('retry-after'), '2');
    assert.match(first.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await first.text(), /is starting\. Try again in a moment/);
    assert.equal(browser.status, 503);
    assert.equal(browser.headers.get('retry-after'), '2');
    const page = await browser.text();
    assert.match(page, /<meta http-equiv="refresh" content="2">/, 'the page reloads by itself');
    assert.match(page, /Starting/);

    const { editor } = await ready(run);
    assert.equal((await fetch(editor)).status, 200, 'the editor once ready');
    assert.equal((await admin(editor, 'flows')).status, 200, 'the admin API once ready');
    await stop(run, [editor]);
  });

  it("keeps the user's flows and credentials, follows the simulator to a new port, and --reset restores the example", async function () {
    this.timeout(150_000);
    const port = await freePort();
    const outbox = path.join(demo, 'outbox');
    const done = path.join(demo, 'done');

    const first = startDemo(port);
    const one = await ready(first);
    const exampleLabel = await tabLabel(one.editor);
    // The user renames the tab and deploys, as in the editor: no credentials are sent, Node-RED keeps them.
    const flows = (await (await admin(one.editor, 'flows')).json()) as FlowNode[];
    const changed = flows.map((n) => (n.type === 'tab' ? { ...n, label: 'Changed by the user' } : n));
    assert.equal((await admin(one.editor, 'flows', { method: 'POST', body: JSON.stringify(changed) })).status, 204);
    const caPem = fs.readFileSync(path.join(demo, 'simulator', 'ca.pem'), 'utf8');
    await stop(first, [one.editor]);

    // The simulator's port is taken meanwhile: it moves, and the demo's config node with it.
    const blocker = net.createServer();
    const simulatorPort = Number(new URL(one.simulatorUrl).port);
    await new Promise<void>((resolve) => blocker.listen(simulatorPort, '127.0.0.1', resolve));
    try {
      const second = startDemo(port);
      const two = await ready(second);
      assert.match(second.output(), /Kept from the last run/);
      assert.notEqual(two.simulatorUrl, one.simulatorUrl);
      assert.match(
        second.output(),
        new RegExp(`last port was taken: "SCB simulator \\(npm start\\)" now points at ${two.simulatorUrl}`),
      );
      assert.equal(await tabLabel(two.editor), 'Changed by the user', "the user's change survived");
      assert.equal(fs.readFileSync(path.join(demo, 'simulator', 'ca.pem'), 'utf8'), caPem, 'the same simulator CA');
      // The kept passphrase and the moved baseUrl work: a sample still ends accepted.
      fs.copyFileSync(path.join(demo, 'samples', 'V40_example.xml'), path.join(outbox, 'V40_kept.xml'));
      await waitUntil(
        () => isFile(path.join(done, 'V40_kept.xml')),
        'the sample accepted with the kept credentials',
        30_000,
      );
      await stop(second, [two.editor]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }

    const third = startDemo(port, ['--reset']);
    const three = await ready(third);
    assert.match(third.output(), /--reset: the earlier flows, credentials and simulator state were removed/);
    assert.match(third.output(), /example is deployed/);
    assert.equal(await tabLabel(three.editor), exampleLabel, 'the example again');
    assert.notEqual(fs.readFileSync(path.join(demo, 'simulator', 'ca.pem'), 'utf8'), caPem, 'a new simulator');
    assert.ok(!fs.existsSync(path.join(demo, 'simulator', 'history.jsonl')), 'no history from before');
    await stop(third, [three.editor]);
  });

  it('refuses an unknown option with its usage, before touching the demo folder', async () => {
    const run = startDemo(await freePort(), ['--rest']);
    assert.equal(await within(run.exited, 15_000, 'npm start giving up'), 1);
    assert.match(run.output(), /Unknown option '--rest'[\s\S]*Usage: npm start \[-- --reset\]/);
    assert.deepEqual(fs.readdirSync(demo), [], 'nothing written');
  });

  it('says clearly when its port is in use, and leaves the demo folder alone', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const run = startDemo(port);
      assert.equal(await within(run.exited, 15_000, 'npm start giving up'), 1);
      assert.match(run.output(), new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use.*SCB_M2M_PORT=`));
      assert.ok(!fs.existsSync(path.join(demo, 'node-red', 'flows.json')), 'nothing written to the user dir');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
