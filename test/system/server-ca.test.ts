/**
 * Server certificate verification cannot be switched off: not by an option of the client or the
 * config node, not by NODE_TLS_REJECT_UNAUTHORIZED=0; a server signed by an unknown CA fails with
 * an error that says to set the CA file, as the node's status and in the Catch node's error.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CertificateError, M2MClient, type M2MClientOptions } from '../../lib';
import type { NodeMessage } from 'node-red';
import { clientFor } from '../helpers/client';
import {
  CONFIG,
  TAB,
  baseFlow,
  credentialsOf,
  helper,
  lastStatus,
  load,
  nextMessage,
  nodeSuite,
  within,
} from '../helpers/node-red';
import { makeTestPki } from '../helpers/pki';

/** Runs `fn` with NODE_TLS_REJECT_UNAUTHORIZED=0, as a user might set it "to make TLS work". */
async function withTlsChecksDisabledInEnv<T>(fn: () => Promise<T>): Promise<T> {
  const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
  }
}

async function heartbeatError(client: M2MClient): Promise<unknown> {
  try {
    await client.heartbeat();
  } catch (err) {
    return err;
  } finally {
    await client.close();
  }
  return assert.fail('the heartbeat to an untrusted server succeeded');
}

function assertUntrusted(err: unknown): void {
  assert.ok(err instanceof CertificateError, String(err));
  assert.equal(err.code, 'SERVER_CERTIFICATE_UNTRUSTED');
  assert.match(err.message, /CA file/);
}

describe('server certificate verification cannot be switched off', function () {
  this.timeout(30_000);
  const ctx = nodeSuite({
    simulator: { clients: [{ name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN'] }] },
    tmpDir: 'scb-server-ca-',
  });
  /** A CA that did not sign the simulator's server certificate. */
  let otherCaPath: string;

  before(async () => {
    otherCaPath = path.join(ctx.dir, 'other-ca.pem');
    fs.writeFileSync(otherCaPath, makeTestPki().ca.certPem);
  });

  it('the client refuses an unknown CA, and options that would turn checks off elsewhere change nothing', async () => {
    const attempts: Array<Partial<M2MClientOptions> & Record<string, unknown>> = [
      { ca: undefined },
      { ca: fs.readFileSync(otherCaPath, 'utf8') },
      // What other libraries call it: not options of this client, so they must do nothing.
      {
        ca: undefined,
        rejectUnauthorized: false,
        insecure: true,
        tls: { rejectUnauthorized: false },
        connect: { rejectUnauthorized: false },
      },
    ];
    for (const options of attempts) assertUntrusted(await heartbeatError(await clientFor(ctx.simulator, options)));
  });

  it('NODE_TLS_REJECT_UNAUTHORIZED=0 does not let an untrusted server pass (no CA, or another CA)', async () => {
    await withTlsChecksDisabledInEnv(async () => {
      assertUntrusted(await heartbeatError(await clientFor(ctx.simulator, { ca: undefined })));
      assertUntrusted(await heartbeatError(await clientFor(ctx.simulator, { ca: fs.readFileSync(otherCaPath) })));
    });
    // The right CA still works, so the refusals above are about trust, not about the set-up.
    const trusting = await clientFor(ctx.simulator);
    try {
      assert.equal((await trusting.heartbeat()).ok, true);
    } finally {
      await trusting.close();
    }
  });

  for (const [name, caPath] of [
    ['no CA file', () => ''],
    ['the CA file of another CA', () => otherCaPath],
  ] as const) {
    it(`through the config node with ${name} (and NODE_TLS_REJECT_UNAUTHORIZED=0): a status and a Catch error that say to set the CA file`, async () => {
      await withTlsChecksDisabledInEnv(async () => {
        await load(
          [
            // Unknown properties a user might hope for are ignored.
            ...baseFlow(ctx.simulator, { caPath: caPath(), rejectUnauthorized: false, verifyservercert: false }),
            { id: 'hb', type: 'scb-m2m-heartbeat', z: TAB, config: CONFIG, wires: [['out']] },
            { id: 'out', type: 'helper', z: TAB },
          ],
          credentialsOf(ctx.simulator),
        );
        let outputs = 0;
        helper.getNode('out').on('input', () => outputs++);
        const caught = nextMessage('caught');
        const heartbeat = helper.getNode('hb');
        heartbeat.receive({ marker: 'ca-check' });
        const msg: NodeMessage = await within(caught, 10_000, 'a Catch message');
        const status = lastStatus(heartbeat);
        await helper.unload();
        assert.equal(outputs, 0);
        assert.equal(msg.marker, 'ca-check');
        assert.match((msg.error as { message: string }).message, /not trusted.*Set the CA file \(caPath\)/);
        assert.equal(status?.text, 'scb-m2m-config.status.server-untrusted');
      });
    });
  }
});
