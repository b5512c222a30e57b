/**
 * The admin endpoints need Node-RED's permissions. node-red-node-test-helper stubs
 * RED.auth.needsPermission away, so this runs a real Node-RED, with adminAuth and our
 * package installed in its user dir, as a child process.
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bcrypt = require('bcryptjs') as { hashSync(password: string, rounds: number): string };

const ROOT = path.join(__dirname, '..');
const PASSWORD = 'test-password';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('admin endpoints in a real Node-RED with adminAuth', function () {
  this.timeout(30_000);
  let dir: string;
  let child: ChildProcess;
  let base: string;
  let exited: Promise<void>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-nr-auth-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const hash = bcrypt.hashSync(PASSWORD, 4);
    fs.mkdirSync(path.join(dir, 'node_modules', '@flowreport'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', '@flowreport', 'node-red-scb-m2m'), 'dir');
    fs.writeFileSync(
      path.join(dir, 'settings.js'),
      `module.exports = ${JSON.stringify({
        uiHost: '127.0.0.1',
        uiPort: port,
        userDir: dir,
        flowFile: 'flows.json',
        credentialSecret: 'test-secret',
        logging: { console: { level: 'warn' } },
        editorTheme: { tours: false },
        diagnostics: { enabled: false },
        telemetry: { enabled: false },
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'admin', password: hash, permissions: '*' },
            { username: 'viewer', password: hash, permissions: 'read' },
          ],
        },
      })};\n`,
    );
    child = spawn(process.execPath, [require.resolve(path.join(process.env.SCB_M2M_NODE_RED ?? 'node-red', 'red.js')), '--settings', path.join(dir, 'settings.js'), '--userDir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // Ready when the editor's login endpoint answers; bounded.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`${base}/auth/login`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`Node-RED did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function token(username: string): Promise<string> {
    const res = await fetch(`${base}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: username === 'viewer' ? 'read' : '*', username, password: PASSWORD }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  function call(method: 'GET' | 'POST', route: string, bearer?: string) {
    return fetch(`${base}${route}`, {
      method,
      headers: { 'content-type': 'application/json', ...(bearer && { authorization: `Bearer ${bearer}` }) },
      ...(method === 'POST' && { body: '{}' }),
    });
  }

  it('our nodes are installed in this Node-RED', async () => {
    const res = await fetch(`${base}/nodes`, { headers: { accept: 'application/json', authorization: `Bearer ${await token('admin')}` } });
    const sets = (await res.json()) as Array<{ types: string[]; enabled: boolean; err?: string }>;
    const types = sets.filter((s) => s.enabled && !s.err).flatMap((s) => s.types);
    for (const type of ['scb-m2m-config', 'scb-m2m-heartbeat', 'scb-m2m-upload', 'scb-m2m-history']) assert.ok(types.includes(type), type);
  });

  it('refuses every endpoint without a token', async () => {
    assert.equal((await call('GET', '/scb-m2m-config/abc/certificate')).status, 401);
    assert.equal((await call('POST', '/scb-m2m-config/certificate')).status, 401);
    assert.equal((await call('POST', '/scb-m2m-config/test')).status, 401);
  });

  it('a read-only user may read certificate info but not inspect or test', async () => {
    const viewer = await token('viewer');
    const info = await call('GET', '/scb-m2m-config/abc/certificate', viewer);
    assert.equal(info.status, 404);
    assert.equal(((await info.json()) as { error: { code: string } }).error.code, 'NOT_DEPLOYED');
    assert.equal((await call('POST', '/scb-m2m-config/certificate', viewer)).status, 401);
    assert.equal((await call('POST', '/scb-m2m-config/test', viewer)).status, 401);
  });

  it('an admin may inspect; with no certificate chosen the answer says so', async () => {
    const res = await call('POST', '/scb-m2m-config/certificate', await token('admin'));
    assert.equal(res.status, 200);
    const body = (await res.json()) as { ok: boolean; error: { code: string; message: string } };
    assert.equal(body.ok, false);
    assert.equal(body.error.code, 'NO_CERTIFICATE_CONFIGURED');
    // The real runtime resolves our message catalog.
    assert.match(body.error.message, /No certificate is configured/);
  });
});
