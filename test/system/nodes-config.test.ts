import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { readCertificate } from '../../lib';
import type { NodeMessage } from 'node-red';
import {
  CONFIG,
  TAB,
  baseFlow,
  credentialsOf,
  helper,
  nodeSuite,
  lastStatus,
  load,
  nextMessage,
  waitUntil,
  type FlowNode,
  type TestNode,
  historyNode,
  uploadNode,
} from '../helpers/node-red';

const USERS = ['hb', 'up', 'hist'];

describe('scb-m2m-config node', function () {
  this.timeout(20_000);
  const ctx = nodeSuite();

  /** The config node and one node of each kind using it. */
  function flow(config: Record<string, unknown> = {}): FlowNode[] {
    return [
      ...baseFlow(ctx.simulator, { organisationsnummer: '9990000045', undersokning: 'VINN', ...config }),
      { id: 'hb', type: 'scb-m2m-heartbeat', z: TAB, config: CONFIG, wires: [['out']] },
      uploadNode([['out']]),
      historyNode({}, [['out'], ['out'], ['out']]),
      { id: 'out', type: 'helper', z: TAB },
    ];
  }

  function pfxOf(name: string): Buffer {
    return fs.readFileSync(ctx.simulator.certificates[name].path);
  }

  /** Asserts that an admin answer carries no key material and none of the given secrets. */
  function assertNoSecrets(text: string, ...secrets: string[]) {
    assert.doesNotMatch(text, /PRIVATE KEY|BEGIN|"key"|"pfx"|"passphrase"/);
    for (const secret of secrets) assert.ok(!text.includes(secret), 'a secret leaked into the answer');
  }

  async function statusOnEveryUser(text: string, fill: string) {
    const users = USERS.map((id) => helper.getNode(id));
    await waitUntil(() => users.every((n) => lastStatus(n)?.text === text), `"${text}" on every node`);
    for (const user of users) assert.equal(lastStatus(user)?.fill, fill);
  }

  function configNode(): TestNode {
    return helper.getNode(CONFIG);
  }

  describe('certificate problems show on every node using it, before anything is sent', () => {
    it('wrong passphrase', async () => {
      const before = ctx.simulator.stats().requests;
      await load(flow(), { [CONFIG]: { passphrase: 'not-the-passphrase' } });
      await statusOnEveryUser('scb-m2m-config.status.wrong-passphrase', 'red');
      const logged = configNode()
        .error.getCalls()
        .filter((c) => c.thisValue === configNode())
        .map((c) => String(c.args[0]));
      assert.equal(logged.length, 1);
      assert.ok(!logged[0].includes('not-the-passphrase'));
      assert.equal(ctx.simulator.stats().requests, before, 'nothing was sent');

      const caught = nextMessage('caught');
      helper.getNode('up').receive({ payload: Buffer.from('<a/>'), filnamn: 'a.xml', topic: 'kept' });
      const msg = await caught;
      assert.equal((msg.error as { code: string }).code, 'WRONG_PASSPHRASE');
      assert.equal(msg.topic, 'kept');
      assert.ok(!JSON.stringify(msg.error).includes('not-the-passphrase'));
      assert.equal(ctx.simulator.stats().requests, before, 'still nothing was sent');
    });

    it('expired', async () => {
      await load(flow({ certPath: ctx.simulator.certificates.expired.path }), credentialsOf(ctx.simulator, 'expired'));
      await statusOnEveryUser('scb-m2m-config.status.expired', 'red');
    });

    it('not yet valid', async () => {
      await load(
        flow({ certPath: ctx.simulator.certificates['not-yet-valid'].path }),
        credentialsOf(ctx.simulator, 'not-yet-valid'),
      );
      await statusOnEveryUser('scb-m2m-config.status.not-yet-valid', 'red');
    });

    it('an unreadable file', async () => {
      await load(flow({ certPath: `${ctx.simulator.dir}/no-such.pfx` }), credentialsOf(ctx.simulator));
      await statusOnEveryUser('scb-m2m-config.status.unreadable', 'red');
    });

    it('expiring within expiryWarningDays: a yellow ring and a warning, and uploads still work', async () => {
      await load(flow({ expiryWarningDays: 100_000 }), credentialsOf(ctx.simulator));
      await statusOnEveryUser('scb-m2m-config.status.expires-in', 'yellow');
      await waitUntil(
        () =>
          configNode()
            .warn.getCalls()
            .some((c) => c.thisValue === configNode() && c.args[0] === 'scb-m2m-config.warnings.expires-soon'),
        'the expiry warning in the log',
      );
      const out = nextMessage('out');
      helper.getNode('up').receive({ payload: Buffer.from('<a/>'), filnamn: 'a.xml' });
      assert.equal(typeof (await out).uploadId, 'string');
    });
  });

  it('uses an uploaded .pfx (the pfx credential) when certPath is empty', async () => {
    await load(flow({ certPath: '' }), credentialsOf(ctx.simulator, 'valid', pfxOf('valid')));
    const out = nextMessage('out');
    helper.getNode('hb').receive({});
    const msg = await out;
    assert.equal((msg.payload as { ok: boolean }).ok, true);
  });

  it('reads a legacy (RC2-40) .pfx', async () => {
    await load(flow({ certPath: ctx.simulator.certificates.legacy.path }), credentialsOf(ctx.simulator, 'legacy'));
    const out = nextMessage('out');
    helper.getNode('hb').receive({});
    assert.equal(((await out).payload as { statusCode: number }).statusCode, 200);
  });

  describe('admin endpoints', () => {
    it('GET certificate of the deployed node: its details, no key material', async () => {
      await load(flow(), credentialsOf(ctx.simulator));
      const res = await helper.request().get(`/scb-m2m-config/${CONFIG}/certificate`);
      assert.equal(res.status, 200);
      const body = res.body as { ok: boolean; certificate: Record<string, unknown>; warning?: string };
      assert.equal(body.ok, true);
      assert.equal(body.certificate.serialNumber, ctx.simulator.certificates.valid.serialNumber.toUpperCase());
      assert.match(String(body.certificate.subject), /9990000045/);
      for (const key of ['issuer', 'validFrom', 'validTo', 'daysLeft', 'fingerprint256'])
        assert.ok(key in body.certificate, key);
      assert.equal(body.warning, undefined);
      assertNoSecrets(res.text, ctx.simulator.certificates.valid.passphrase);
    });

    it('GET certificate of a node that is not deployed: 404', async () => {
      await load(flow(), credentialsOf(ctx.simulator));
      const res = await helper.request().get('/scb-m2m-config/nope/certificate');
      assert.equal(res.status, 404);
      assert.equal((res.body as { error: { code: string } }).error.code, 'NOT_DEPLOYED');
    });

    it('GET certificate of a deployed node with a wrong passphrase: the error, not the passphrase', async () => {
      await load(flow(), { [CONFIG]: { passphrase: 'secret-but-wrong' } });
      const res = await helper.request().get(`/scb-m2m-config/${CONFIG}/certificate`);
      assert.equal(res.status, 200);
      assert.deepEqual(
        [(res.body as { ok: boolean }).ok, (res.body as { error: { code: string } }).error.code],
        [false, 'WRONG_PASSPHRASE'],
      );
      assertNoSecrets(res.text, 'secret-but-wrong');
    });

    it('POST certificate inspects an uploaded .pfx before deploy', async () => {
      await load(flow(), credentialsOf(ctx.simulator));
      const pfx = pfxOf('other-org').toString('base64');
      const passphrase = ctx.simulator.certificates['other-org'].passphrase;
      const res = await helper
        .request()
        .post('/scb-m2m-config/certificate')
        .send({ pfx, passphrase, expiryWarningDays: 100_000 });
      const body = res.body as { ok: boolean; certificate: { subject: string }; warning?: string };
      assert.equal(body.ok, true);
      assert.match(body.certificate.subject, /5560160680/);
      assert.equal(body.warning, 'scb-m2m-config.warnings.expires-soon');
      assertNoSecrets(res.text, passphrase, pfx.slice(0, 40));

      const wrong = await helper.request().post('/scb-m2m-config/certificate').send({ pfx, passphrase: 'guess-123' });
      assert.equal((wrong.body as { error: { code: string } }).error.code, 'WRONG_PASSPHRASE');
      assertNoSecrets(wrong.text, 'guess-123', pfx.slice(0, 40));
    });

    it("POST certificate with the editor's password placeholder uses the deployed node's credentials", async () => {
      await load(flow({ certPath: '' }), credentialsOf(ctx.simulator, 'valid', pfxOf('valid')));
      const res = await helper
        .request()
        .post('/scb-m2m-config/certificate')
        .send({ id: CONFIG, pfx: '__PWRD__', passphrase: '__PWRD__' });
      assert.equal((res.body as { ok: boolean }).ok, true);
      assert.match((res.body as { certificate: { subject: string } }).certificate.subject, /9990000045/);
    });

    it("the placeholder never lends another node type's credentials (an id that is not an scb-m2m-config node)", async () => {
      // The heartbeat node 'hb' is given a passphrase credential, as a tls-config node has one.
      await load(flow({ certPath: '' }), {
        ...credentialsOf(ctx.simulator, 'valid', pfxOf('valid')),
        hb: { passphrase: ctx.simulator.certificates.valid.passphrase },
      });
      const pfx = pfxOf('valid').toString('base64');
      const res = await helper
        .request()
        .post('/scb-m2m-config/certificate')
        .send({ id: 'hb', pfx, passphrase: '__PWRD__' });
      assert.equal((res.body as { ok: boolean }).ok, false);
      assert.equal((res.body as { error: { code: string } }).error.code, 'WRONG_PASSPHRASE');
    });

    it('POST test runs a heartbeat with the dialog settings', async () => {
      await load(flow(), credentialsOf(ctx.simulator));
      const heartbeats = ctx.simulator.stats().heartbeats;
      const settings = {
        environment: 'custom',
        baseUrl: ctx.simulator.url,
        apiVersion: 'v2',
        caPath: ctx.simulator.caPath,
      };
      const res = await helper
        .request()
        .post('/scb-m2m-config/test')
        .send({
          ...settings,
          certPath: ctx.simulator.certificates.valid.path,
          passphrase: ctx.simulator.certificates.valid.passphrase,
        });
      const body = res.body as { ok: boolean; serverTime: string; statusCode: number; apiRoot: string };
      assert.equal(body.ok, true, res.text);
      assert.equal(body.statusCode, 200);
      assert.ok(body.serverTime.length > 0);
      assert.equal(body.apiRoot, `${ctx.simulator.url}m2m/v2/`);
      assert.equal(ctx.simulator.stats().heartbeats, heartbeats + 1);
      assertNoSecrets(res.text, ctx.simulator.certificates.valid.passphrase);
    });

    it('POST test reports a failure: an untrusted server, a refused certificate', async () => {
      await load(flow(), credentialsOf(ctx.simulator));
      const common = {
        id: CONFIG,
        environment: 'custom',
        baseUrl: ctx.simulator.url,
        apiVersion: 'v2',
        passphrase: '__PWRD__',
      };
      const untrusted = await helper
        .request()
        .post('/scb-m2m-config/test')
        .send({ ...common, caPath: '', certPath: ctx.simulator.certificates.valid.path });
      const error = (untrusted.body as { ok: boolean; error: { kind: string; code: string; message: string } }).error;
      assert.equal((untrusted.body as { ok: boolean }).ok, false);
      assert.equal(error.kind, 'certificate');
      assert.match(error.message, /caPath|CA/);

      const revoked = await helper
        .request()
        .post('/scb-m2m-config/test')
        .send({
          ...common,
          caPath: ctx.simulator.caPath,
          certPath: ctx.simulator.certificates.revoked.path,
          passphrase: ctx.simulator.certificates.revoked.passphrase,
        });
      const refused = revoked.body as { ok: boolean; error: { statusCode?: number } };
      assert.equal(refused.ok, false);
      assert.equal(refused.error.statusCode, 401);
      assertNoSecrets(revoked.text, ctx.simulator.certificates.revoked.passphrase);
    });
  });
});

describe('scb-m2m-heartbeat node', function () {
  this.timeout(20_000);
  const ctx = nodeSuite();

  function flow(config: Record<string, unknown> = {}): FlowNode[] {
    return [
      ...baseFlow(ctx.simulator, config),
      { id: 'hb', type: 'scb-m2m-heartbeat', z: TAB, config: CONFIG, wires: [['out']] },
      { id: 'out', type: 'helper', z: TAB },
    ];
  }

  it('answers { ok, serverTime, statusCode } and shows a green dot with the time', async () => {
    await load(flow(), credentialsOf(ctx.simulator));
    const out = nextMessage('out');
    helper.getNode('hb').receive({ topic: 'kept' });
    const msg = await out;
    const payload = msg.payload as { ok: boolean; serverTime: string; statusCode: number };
    assert.equal(payload.ok, true);
    assert.equal(payload.statusCode, 200);
    assert.ok(!Number.isNaN(Date.parse(payload.serverTime)), payload.serverTime);
    assert.equal(msg.topic, 'kept');
    assert.deepEqual(lastStatus(helper.getNode('hb')), {
      fill: 'green',
      shape: 'dot',
      text: 'scb-m2m-heartbeat.status.ok',
    });
  });

  it('adds msg.certificate: the subject, notAfter and the days left as of the heartbeat', async () => {
    await load(flow(), credentialsOf(ctx.simulator));
    const { info } = await readCertificate({
      path: ctx.simulator.certificates.valid.path,
      passphrase: ctx.simulator.certificates.valid.passphrase,
    });
    const out = nextMessage('out');
    const before = new Date();
    helper.getNode('hb').receive({});
    const msg = await out;
    const after = new Date();
    const certificate = msg.certificate as { subject: string; notAfter: string; daysLeft: number };
    assert.deepEqual(Object.keys(certificate).sort(), ['daysLeft', 'notAfter', 'subject']);
    assert.equal(certificate.subject, info.subject);
    assert.match(certificate.subject, /9990000045/);
    assert.equal(certificate.notAfter, info.validTo);
    const daysFrom = (time: Date) => Math.floor((Date.parse(info.validTo) - time.getTime()) / 86_400_000);
    assert.ok(
      certificate.daysLeft <= daysFrom(before) && certificate.daysLeft >= daysFrom(after),
      `daysLeft ${certificate.daysLeft} counts from the heartbeat's time`,
    );
  });

  it('a refused certificate: Catch gets the msg with statusCode 401, a red ring names the reason', async () => {
    await load(flow({ certPath: ctx.simulator.certificates.revoked.path }), credentialsOf(ctx.simulator, 'revoked'));
    const caught = nextMessage('caught');
    helper.getNode('hb').receive({ topic: 'kept' });
    const msg: NodeMessage = await caught;
    assert.equal(msg.statusCode, 401);
    assert.equal(msg.topic, 'kept');
    assert.equal((msg.error as { source: { id: string } }).source.id, 'hb');
    assert.deepEqual(lastStatus(helper.getNode('hb')), {
      fill: 'red',
      shape: 'ring',
      text: 'scb-m2m-config.status.unauthorised',
    });
  });

  it('a server that is down: a network error reaches Catch', async () => {
    await load(flow({ baseUrl: 'https://127.0.0.1:1/' }), credentialsOf(ctx.simulator));
    const caught = nextMessage('caught');
    helper.getNode('hb').receive({});
    const msg = await caught;
    assert.equal(msg.statusCode, undefined);
    assert.equal(lastStatus(helper.getNode('hb'))?.text, 'scb-m2m-config.status.network');
  });
});
