/**
 * Soak: 300 uploads through one config node with ~10 % random faults (seeded: the seed is printed
 * and SCB_TEST_SEED replays it). Every msg ends in exactly one output or one Catch, no file
 * arrives twice or damaged, and afterwards the sockets and timers are back to where they were.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { SEGMENT_SIZE } from '../../lib';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import type { NodeMessage } from 'node-red';
import { REQUEST } from '../helpers/client';
import { Outcomes, seededRandom, testSeed } from '../helpers/faults';
import { CONFIG, TAB, activeResources, baseFlow, credentialsOf, helper, load, waitUntil } from '../helpers/node-red';
import { sha256 } from '../helpers/util';

const UPLOADS = 300;
const FAULT_RATE = 0.1;
const BATCH = 10;
/** Of the uploads, this share is two data segments (9 216 000 + a few bytes); the rest one small segment. */
const TWO_SEGMENT_RATE = 0.02;

/** Handles that must not outlive the flow and the simulator. */
const WATCHED = ['TCPSocketWrap', 'TLSWrap', 'TCPServerWrap', 'Timeout'];
const watched = () => Object.fromEntries(WATCHED.map((k) => [k, activeResources()[k] ?? 0]));

describe('soak: 300 uploads with 10 % random faults through one config node', function () {
  this.timeout(120_000);
  let simulator: Simulator;

  after(async () => {
    await helper.unload();
    await simulator?.stop();
  });

  it('every msg ends once, no file twice or damaged, sockets and timers back to zero', async () => {
    // Counted once mocha's own timer for this test runs (it starts when the test first awaits).
    await new Promise((resolve) => setImmediate(resolve));
    const before = watched();
    const random = seededRandom(testSeed('soak'));
    simulator = await startSimulator({
      clients: [{ name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN'] }],
      keepFiles: false,
    });
    const faults: Array<[string, () => void]> = [
      ['500 on any request', () => simulator.faults.failNext(1, { status: 500 })],
      ['503 twice on a data segment', () => simulator.faults.failNext(2, { status: 503, match: /\/file\/\d+\// })],
      ['reset mid-body', () => simulator.faults.resetNext(1, { match: /\/file\//, afterBytes: 512 })],
      [
        'session expiry before a data segment',
        () => simulator.faults.expireSessionBeforeNext({ match: /\/file\/\d+\// }),
      ],
      ['slow answer (300 ms)', () => simulator.faults.slowNext(1, 300)],
      ['F5 page on a data segment', () => simulator.faults.htmlNext(1, { match: /\/file\/\d+\// })],
      ['invalid JSON on a closing segment', () => simulator.faults.invalidJsonNext(1, { match: /\/file\/-1\// })],
    ];
    await load(
      [
        ...baseFlow(simulator, {
          organisationsnummer: REQUEST.organisationsnummer,
          undersokning: REQUEST.undersokning,
        }),
        {
          id: 'up',
          type: 'scb-m2m-upload',
          z: TAB,
          config: CONFIG,
          referensperiod: REQUEST.referensperiod,
          referensperiodType: 'str',
          filformat: REQUEST.filformat,
          filformatType: 'str',
          wires: [['out']],
        },
        { id: 'out', type: 'helper', z: TAB },
      ],
      credentialsOf(simulator),
    );
    const outcomes = new Outcomes('soakId');
    outcomes.listen(['out'], 'caught');
    const big = crypto.randomBytes(SEGMENT_SIZE);
    const sent = new Map<string, { sha: string; size: number }>();
    const armed = new Map<string, number>();
    const started = Date.now();

    for (let first = 0; first < UPLOADS; first += BATCH) {
      const batch: string[] = [];
      for (let i = first; i < Math.min(UPLOADS, first + BATCH); i++) {
        const soakId = `soak-${String(i).padStart(3, '0')}`;
        const small = crypto.randomBytes(64 + Math.floor(random() * 4096));
        const payload = random() < TWO_SEGMENT_RATE ? Buffer.concat([big, small]) : small;
        sent.set(soakId, { sha: sha256(payload), size: payload.length });
        if (random() < FAULT_RATE) {
          const [name, arm] = faults[Math.floor(random() * faults.length)];
          arm();
          armed.set(name, (armed.get(name) ?? 0) + 1);
        }
        const msg: NodeMessage = { payload, filnamn: `${soakId}.xml`, soakId };
        helper.getNode('up').receive(msg);
        batch.push(soakId);
      }
      await outcomes.settled(batch, 60_000);
    }
    const elapsed = Date.now() - started;
    const caught = [...sent.keys()].filter((k) => outcomes.caught.has(k));
    console.log(
      `      ${UPLOADS} uploads in ${elapsed} ms: ${UPLOADS - caught.length} sent, ${caught.length} caught; faults armed: ${JSON.stringify(Object.fromEntries(armed))}`,
    );

    await helper.unload();
    simulator.faults.clear();
    // Exactly one ending each: counted after the flow is closed, when nothing more can come.
    outcomes.assertEachEndedOnce([...sent.keys()]);

    const deliveries = simulator.deliveries();
    await simulator.stop();
    const byId = new Map<string, typeof deliveries>();
    for (const d of deliveries) {
      const soakId = d.filnamn.replace(/\.xml$/, '');
      byId.set(soakId, [...(byId.get(soakId) ?? []), d]);
    }
    const problems: string[] = [];
    for (const [soakId, { sha, size }] of sent) {
      const got = byId.get(soakId) ?? [];
      const output = outcomes.outputs.get(soakId)?.[0];
      if (got.length > 1)
        problems.push(`${soakId}: delivered ${got.length} times (sizes ${got.map((d) => d.size).join(', ')})`);
      for (const d of got)
        if (d.sha256 !== sha) problems.push(`${soakId}: delivered damaged (${d.size} of ${size} bytes)`);
      if (output && !got.some((d) => d.deliveryId === output.uploadId))
        problems.push(`${soakId}: output uploadId ${String(output.uploadId)} is not at the server`);
    }
    // Caught ones must say why and keep their msg.
    for (const soakId of caught) {
      const msg = outcomes.caught.get(soakId)![0];
      if (msg.filnamn !== `${soakId}.xml` || typeof (msg.error as { message?: unknown })?.message !== 'string')
        problems.push(`${soakId}: caught msg lost its properties`);
    }
    assert.deepEqual(problems, [], 'every delivery once and whole');
    assert.ok(armed.size > 0, 'faults were injected');

    // Sockets and timers: back to where they were, given a bounded time to close.
    await waitUntil(
      () => WATCHED.every((k) => watched()[k] <= before[k]),
      `handles back to ${JSON.stringify(before)} (now ${JSON.stringify(watched())})`,
      5000,
    );
  });
});
