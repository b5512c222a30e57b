/**
 * The passphrase and the .pfx never leak: a real Node-RED (child process, adminAuth, a
 * credentialSecret) gets a config node with an uploaded .pfx through POST /flows, runs a
 * heartbeat, an upload with history, a refused upload (401), the admin endpoints (good and bad
 * passphrase), and then everything it wrote or answered is scanned for the secrets: its user dir
 * (flows, encrypted credentials, every other file), GET /flows, GET /credentials, the admin
 * answers, its log, every msg (as JSON by a file node, and by a debug node to the log) and every
 * error a Catch node got.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCertificate } from '../../lib';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import { deploy } from '../helpers/faults';
import { uploadNode, waitUntil } from '../helpers/node-red';
import {
  adminToken,
  credentialsAuth,
  fileRecorder,
  makeUserDir,
  removeDir,
  startNodeRed,
  type NodeRedProcess,
} from '../helpers/node-red-process';
import { jsonLines } from '../helpers/util';

const ADMIN_PASSWORD = 'admin-password-for-tests';
/** Every run has its own passphrase, so a hit can only be a leak. */
const PASSPHRASE = `Pp-${crypto.randomBytes(12).toString('hex')}`;
const WINDOW = 16;

/** The forms a secret could take in a text: whole, or any 16-character window of it. */
class SecretScanner {
  private readonly windows = new Map<string, string>();
  private readonly wholes: Array<[string, string]> = [];

  add(name: string, text: string, windows: boolean): void {
    this.wholes.push([name, text]);
    if (windows) for (let i = 0; i + WINDOW <= text.length; i++) this.windows.set(text.slice(i, i + WINDOW), name);
  }

  /** Public material inside the .pfx (the certificates: subject, issuer, ...) is no secret. */
  exempt(text: string): void {
    for (let i = 0; i + WINDOW <= text.length; i++) this.windows.delete(text.slice(i, i + WINDOW));
  }

  /** Names of the secrets found in `content` (as UTF-8 text and as raw bytes), with where. */
  scan(where: string, content: string | Buffer): string[] {
    const texts = Buffer.isBuffer(content) ? [content.toString('utf8'), content.toString('latin1')] : [content];
    const found = new Set<string>();
    for (const text of texts) {
      for (const [name, whole] of this.wholes) if (text.includes(whole)) found.add(`${name} (whole) in ${where}`);
      for (let i = 0; i + WINDOW <= text.length; i++) {
        const name = this.windows.get(text.slice(i, i + WINDOW));
        if (name)
          found.add(
            `${name} (16-char window at ${i}: ${JSON.stringify(text.slice(Math.max(0, i - 20), i + 36))}) in ${where}`,
          );
      }
    }
    return [...found];
  }
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.name === 'node_modules') return [];
    return e.isDirectory() ? filesUnder(full) : e.isFile() ? [full] : [];
  });
}

describe('secrets: the passphrase and the .pfx appear nowhere Node-RED writes or answers', function () {
  this.timeout(60_000);
  let simulator: Simulator;
  let dir: string;
  let nr: NodeRedProcess;
  let token: string;
  let pfx: Buffer;
  const scanner = new SecretScanner();
  /** Everything to scan, by where it came from. */
  const collected: Array<[string, string | Buffer]> = [];
  const recordFile = () => path.join(dir, 'records.jsonl');

  const api = (method: 'GET' | 'POST', route: string, body?: unknown, bearer: string | null = token) =>
    fetch(`${nr.base}${route}`, {
      method,
      headers: { 'content-type': 'application/json', ...(bearer && { authorization: `Bearer ${bearer}` }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });

  /** Calls the admin API and keeps its answer for the scan. */
  async function answerOf(
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    // GET /flows answers a plain array (API v1).
    const res = await api(method, route, body);
    const text = await res.text();
    collected.push([`${method} ${route} answer`, text]);
    return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
  }

  const records = () => jsonLines(recordFile());

  before(async () => {
    simulator = await startSimulator({
      clients: [
        { name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'], passphrase: PASSPHRASE },
      ],
      historyDelayMs: 0,
    });
    pfx = fs.readFileSync(simulator.certificates.valid.path);
    const { key, cert } = await readCertificate({ pfx, passphrase: PASSPHRASE });
    scanner.add('passphrase', PASSPHRASE, false);
    scanner.add('pfx base64', pfx.toString('base64'), true);
    scanner.add('pfx bytes', pfx.toString('latin1'), true);
    scanner.add('pfx hex', pfx.toString('hex'), true);
    scanner.add('private key', key.replace(/-----[^-]+-----|\s/g, ''), true);
    for (const pem of cert.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []) {
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      for (const encoding of ['latin1', 'hex', 'base64'] as const) scanner.exempt(der.toString(encoding));
    }

    dir = makeUserDir('scb-secrets-');
    nr = await startNodeRed(dir, {
      settings: {
        credentialSecret: crypto.randomBytes(16).toString('hex'),
        // The most talkative level: debug lines of the client go to the log too.
        logging: { console: { level: 'debug', metrics: false, audit: false } },
        adminAuth: credentialsAuth([{ username: 'admin', password: ADMIN_PASSWORD, permissions: '*' }]),
      },
    });
    token = await adminToken(nr, 'admin', ADMIN_PASSWORD);
  });

  after(async () => {
    await nr?.stop();
    await simulator?.stop();
    removeDir(dir);
    removeDir(simulator?.dir);
  });

  it('deploys a config node with an uploaded .pfx and runs heartbeat, upload, history and a refused upload', async () => {
    // Node-RED reads a property equal to a node's id as a reference to it: ids and topics differ.
    const inject = (topic: string, props: Array<{ p: string; v: string; vt: string }>) => ({
      id: `inject-${topic}`,
      type: 'inject',
      z: 'tab',
      props: [{ p: 'topic', vt: 'str' }, ...props],
      topic,
      repeat: '',
      once: false,
      wires: [[topic === 'beat' ? 'hb' : 'up']],
    });
    const record = ['to-json', 'to-debug'];
    const flow = [
      { id: 'tab', type: 'tab', label: 'secrets' },
      {
        id: 'cfg',
        type: 'scb-m2m-config',
        name: 'uploaded pfx',
        environment: 'custom',
        baseUrl: simulator.url,
        apiVersion: 'v2',
        certPath: '',
        certName: 'valid.pfx',
        caPath: simulator.caPath,
        organisationsnummer: '9990000045',
        undersokning: 'VINN',
        expiryWarningDays: 30,
        credentials: { pfx: pfx.toString('base64'), passphrase: PASSPHRASE },
      },
      inject('beat', []),
      inject('send', [
        { p: 'payload', v: '<vinn>secret scan</vinn>', vt: 'str' },
        { p: 'filnamn', v: 'scan.xml', vt: 'str' },
      ]),
      inject('bad', [
        { p: 'payload', v: '<vinn/>', vt: 'str' },
        { p: 'filnamn', v: 'bad.xml', vt: 'str' },
        { p: 'organisationsnummer', v: '5560160680', vt: 'str' },
      ]),
      { id: 'hb', type: 'scb-m2m-heartbeat', z: 'tab', config: 'cfg', wires: [record] },
      uploadNode([['hist', ...record]]),
      {
        id: 'hist',
        type: 'scb-m2m-history',
        z: 'tab',
        config: 'cfg',
        mode: 'once',
        interval: 30,
        timeout: 3600,
        rule: '',
        wires: [record, record, record],
      },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [record] },
      // Every msg as JSON, one line each; and to the log by a debug node.
      {
        id: 'to-json',
        type: 'function',
        z: 'tab',
        func: 'return { payload: JSON.stringify(msg) };',
        outputs: 1,
        wires: [['to-file']],
      },
      fileRecorder(recordFile()),
      {
        id: 'to-debug',
        type: 'debug',
        z: 'tab',
        active: true,
        tosidebar: true,
        console: true,
        tostatus: false,
        complete: 'true',
        targetType: 'full',
        wires: [],
      },
    ];
    await deploy(nr, flow, token);
    for (const id of ['beat', 'send', 'bad']) {
      const res = await api('POST', `/inject/inject-${id}`);
      assert.equal(res.status, 200, `inject ${id}: ${await res.text()}\n${nr.output()}`);
    }
    await waitUntil(
      () => records().length >= 4,
      'heartbeat, upload, history and the caught 401 in the records',
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${nr.output()}`);
    });

    const byTopic = (topic: string) => records().filter((r) => r.topic === topic);
    assert.equal((byTopic('beat')[0].payload as { ok: boolean }).ok, true);
    const sent = byTopic('send');
    assert.equal(sent.length, 2, 'the upload and its history');
    assert.ok(sent.every((r) => typeof r.uploadId === 'string'));
    const bad = byTopic('bad');
    assert.equal(bad.length, 1);
    assert.equal(bad[0].statusCode, 401);
    assert.match((bad[0].error as { message: string }).message, /5560160680/);
    assert.equal(simulator.deliveries().length, 1);
  });

  it('the admin endpoints answer 401 without a token and 200 with one, for the deployed config node', async () => {
    const routes: Array<['GET' | 'POST', string, unknown]> = [
      ['GET', '/scb-m2m-config/cfg/certificate', undefined],
      ['POST', '/scb-m2m-config/certificate', { id: 'cfg', pfx: '__PWRD__', passphrase: '__PWRD__' }],
      [
        'POST',
        '/scb-m2m-config/test',
        {
          id: 'cfg',
          environment: 'custom',
          baseUrl: simulator.url,
          apiVersion: 'v2',
          certPath: '',
          caPath: simulator.caPath,
        },
      ],
    ];
    for (const [method, route, body] of routes) {
      const refused = await api(method, route, body, null);
      collected.push([`${method} ${route} without token`, await refused.text()]);
      assert.equal(refused.status, 401, `${method} ${route} without a token`);
      const { status, json } = await answerOf(method, route, body);
      assert.equal(status, 200, `${method} ${route} with a token`);
      assert.equal(json.ok, true, `${method} ${route}: ${JSON.stringify(json)}`);
    }
    // A wrong passphrase typed in the dialog: the answer says so without echoing it.
    const wrong = await answerOf('POST', '/scb-m2m-config/test', {
      ...(routes[2][2] as object),
      passphrase: `${PASSPHRASE}-typo`,
    });
    assert.equal(wrong.json.ok, false);
    assert.equal((wrong.json.error as { code: string }).code, 'WRONG_PASSPHRASE');
    assert.ok(!JSON.stringify(wrong.json).includes('-typo'), 'the typed passphrase is not echoed');
  });

  it('GET /credentials shows only that the secrets are set; GET /flows carries none', async () => {
    const creds = await answerOf('GET', '/credentials/scb-m2m-config/cfg');
    assert.equal(creds.status, 200);
    assert.deepEqual(creds.json, { has_pfx: true, has_passphrase: true });
    const flows = await answerOf('GET', '/flows');
    assert.equal(flows.status, 200);
    const cfg = (flows.json as unknown as Array<Record<string, unknown>>).find((n) => n.id === 'cfg');
    assert.ok(cfg, 'the config node is in GET /flows');
    assert.equal(cfg.credentials, undefined);
  });

  it('the credentials file is encrypted and no file, answer, log line, msg or error holds a secret', async () => {
    // Stop first: the log is complete and the context and flow files are flushed.
    await nr.stop();
    const credFile = JSON.parse(fs.readFileSync(path.join(dir, 'flows_cred.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(credFile), ['$'], 'flows_cred.json is {"$": "<encrypted>"}');
    const files = filesUnder(dir);
    assert.ok(files.some((f) => f.endsWith('flows.json')) && files.includes(recordFile()));
    for (const file of files) collected.push([path.relative(dir, file), fs.readFileSync(file)]);
    const log = nr.output();
    // The debug node printed every msg, and the client's debug lines are there.
    assert.match(log, /scan\.xml/);
    assert.match(log, /heartbeat/i);
    collected.push(['Node-RED log', log]);
    // The scan can fail: fragments of each secret are found.
    const b64 = pfx.toString('base64');
    assert.ok(scanner.scan('check', `x${b64.slice(-40, -20)}x`).length > 0, 'a pfx base64 fragment');
    assert.ok(scanner.scan('check', Buffer.concat([Buffer.from('x'), pfx.subarray(-40)])).length > 0, 'raw pfx bytes');
    assert.ok(scanner.scan('check', `error: ${PASSPHRASE}`).length > 0, 'the passphrase');
    const found = collected.flatMap(([where, content]) => scanner.scan(where, content));
    assert.deepEqual(found, [], 'no secret anywhere');
    assert.ok(collected.length >= 12, `scanned ${collected.length} sources`);
  });
});
