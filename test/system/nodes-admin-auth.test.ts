/**
 * The admin endpoints need Node-RED's permissions. node-red-node-test-helper stubs
 * RED.auth.needsPermission away, so this runs a real Node-RED, with adminAuth and our
 * package installed in its user dir, as a child process.
 */
import * as assert from 'node:assert/strict';
import {
  adminToken,
  credentialsAuth,
  makeUserDir,
  removeDir,
  startNodeRed,
  type NodeRedProcess,
} from '../helpers/node-red-process';

const PASSWORD = 'test-password';

describe('admin endpoints in a real Node-RED with adminAuth', function () {
  this.timeout(30_000);
  let dir: string;
  let nr: NodeRedProcess;
  let base: string;

  before(async () => {
    dir = makeUserDir('scb-nr-auth-');
    nr = await startNodeRed(dir, {
      settings: {
        credentialSecret: 'test-secret',
        adminAuth: credentialsAuth([
          { username: 'admin', password: PASSWORD, permissions: '*' },
          { username: 'viewer', password: PASSWORD, permissions: 'read' },
          { username: 'flows-only', password: PASSWORD, permissions: ['flows.read'] },
        ]),
      },
    });
    base = nr.base;
  });

  after(async () => {
    await nr?.stop();
    removeDir(dir);
  });

  const SCOPES: Record<string, string> = { admin: '*', viewer: 'read', 'flows-only': 'flows.read' };
  const token = (username: string) => adminToken(nr, username, PASSWORD, SCOPES[username]);

  function call(method: 'GET' | 'POST', route: string, bearer?: string) {
    return fetch(`${base}${route}`, {
      method,
      headers: { 'content-type': 'application/json', ...(bearer && { authorization: `Bearer ${bearer}` }) },
      ...(method === 'POST' && { body: '{}' }),
    });
  }

  it('our nodes are installed in this Node-RED', async () => {
    const res = await fetch(`${base}/nodes`, {
      headers: { accept: 'application/json', authorization: `Bearer ${await token('admin')}` },
    });
    const sets = (await res.json()) as Array<{ types: string[]; enabled: boolean; err?: string }>;
    const types = sets.filter((s) => s.enabled && !s.err).flatMap((s) => s.types);
    for (const type of ['scb-m2m-config', 'scb-m2m-heartbeat', 'scb-m2m-upload', 'scb-m2m-history'])
      assert.ok(types.includes(type), type);
  });

  it('refuses every endpoint without a token', async () => {
    assert.equal((await call('GET', '/scb-m2m-config/abc/certificate')).status, 401);
    assert.equal((await call('POST', '/scb-m2m-config/certificate')).status, 401);
    assert.equal((await call('POST', '/scb-m2m-config/test')).status, 401);
    assert.equal((await call('GET', '/scb-m2m/deliveries')).status, 401);
  });

  it('the delivery journal needs its read permission: a reader gets the list, a user without it is refused', async () => {
    const list = await call('GET', '/scb-m2m/deliveries', await token('viewer'));
    assert.equal(list.status, 200);
    assert.deepEqual(await list.json(), []);
    assert.equal((await call('GET', '/scb-m2m/deliveries', await token('flows-only'))).status, 401);
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
