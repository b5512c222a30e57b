/**
 * Shared by the fault, soak, fuzz, secrets and restart tests: seeded randomness (a failure can be
 * replayed), a ledger of how each msg ended, and deploying to a real Node-RED (./node-red-process).
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type { NodeMessage } from 'node-red';
import { helper, waitUntil } from './node-red';
import type { NodeRedProcess } from './node-red-process';

/** mulberry32: small, fast, and the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of a randomised test: SCB_TEST_SEED when set, else a new one; printed so a failure can be replayed. */
export function testSeed(what: string): number {
  const given = process.env.SCB_TEST_SEED;
  const seed = given !== undefined && /^\d+$/.test(given) ? Number(given) : crypto.randomInt(2 ** 31);
  console.log(`      ${what}: seed ${seed} (replay with SCB_TEST_SEED=${seed})`);
  return seed;
}

/**
 * How each msg ended, by a marker property: outputs of helper node(s) and messages a Catch node
 * passed on. A msg must end exactly once; `assertEachEndedOnce` checks that.
 */
export class Outcomes {
  readonly outputs = new Map<string, NodeMessage[]>();
  readonly caught = new Map<string, NodeMessage[]>();
  private readonly waiters = new Map<string, () => void>();

  constructor(private readonly marker: string) {}

  /** Listens on helper nodes: `outputIds` count as outputs, `catchId` as caught. */
  listen(outputIds: string[], catchId: string): void {
    for (const id of outputIds) helper.getNode(id).on('input', (msg: NodeMessage) => this.record(this.outputs, msg));
    helper.getNode(catchId).on('input', (msg: NodeMessage) => this.record(this.caught, msg));
  }

  private record(into: Map<string, NodeMessage[]>, msg: NodeMessage): void {
    const key = String(msg[this.marker]);
    into.set(key, [...(into.get(key) ?? []), msg]);
    this.waiters.get(key)?.();
  }

  /** Resolves when `key` has ended (at once if it has). */
  ended(key: string): Promise<void> {
    if (this.count(key) > 0) return Promise.resolve();
    return new Promise((resolve) =>
      this.waiters.set(key, () => {
        this.waiters.delete(key);
        resolve();
      }),
    );
  }

  count(key: string): number {
    return (this.outputs.get(key)?.length ?? 0) + (this.caught.get(key)?.length ?? 0);
  }

  /** Resolves when every key has ended at least once (bounded). */
  async settled(keys: string[], timeoutMs: number): Promise<void> {
    await waitUntil(
      () => keys.every((k) => this.count(k) > 0),
      `an output or a Catch for each of ${keys.length} msgs`,
      timeoutMs,
    );
  }

  /** Every key ended exactly once (call after the flow is unloaded, when nothing more can come). */
  assertEachEndedOnce(keys: string[]): void {
    for (const key of keys)
      assert.equal(
        this.count(key),
        1,
        `msg ${key}: ${this.outputs.get(key)?.length ?? 0} outputs, ${this.caught.get(key)?.length ?? 0} catches`,
      );
    const unknown = [...this.outputs.keys(), ...this.caught.keys()].filter((k) => !keys.includes(k));
    assert.deepEqual(unknown, [], 'no msg that was not sent');
  }
}

const startedFlows = (nr: NodeRedProcess) => nr.output().split('Started flows').length - 1;

/**
 * Deploys `flow` (config nodes may carry `credentials`) with a full deploy and waits until the
 * runtime has started it (it answers before: the log's next "Started flows" tells).
 */
export async function deploy(nr: NodeRedProcess, flow: unknown[], bearer?: string): Promise<void> {
  const started = startedFlows(nr);
  const res = await fetch(`${nr.base}/flows`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'node-red-deployment-type': 'full',
      'node-red-api-version': 'v1',
      ...(bearer && { authorization: `Bearer ${bearer}` }),
    },
    body: JSON.stringify(flow),
  });
  assert.equal(res.status, 204, `deploy answered ${res.status}: ${await res.text()}`);
  await waitUntil(
    () => startedFlows(nr) > started,
    `the deployed flows to start (log: ${nr.output().slice(-500)})`,
    10_000,
  );
}
