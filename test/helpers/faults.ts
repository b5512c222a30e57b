/**
 * Shared by the fault, soak, fuzz, secrets, restart and server-CA tests: seeded randomness (a
 * failure can be replayed), a ledger of how each msg ended, and a real Node-RED in a child process.
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { NodeMessage } from '../../nodes/shared/red';
import { helper, waitUntil } from './node-red';
import { nodeRedDir } from '../browser/node-red-process';

const ROOT = path.join(__dirname, '..', '..');

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
    await waitUntil(() => keys.every((k) => this.count(k) > 0), `an output or a Catch for each of ${keys.length} msgs`, timeoutMs);
  }

  /** Every key ended exactly once (call after the flow is unloaded, when nothing more can come). */
  assertEachEndedOnce(keys: string[]): void {
    for (const key of keys) assert.equal(this.count(key), 1, `msg ${key}: ${this.outputs.get(key)?.length ?? 0} outputs, ${this.caught.get(key)?.length ?? 0} catches`);
    const unknown = [...this.outputs.keys(), ...this.caught.keys()].filter((k) => !keys.includes(k));
    assert.deepEqual(unknown, [], 'no msg that was not sent');
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A Node-RED runtime in a child process, with this package installed in its user dir. */
export interface NodeRedProcess {
  /** e.g. `http://127.0.0.1:1880`. */
  readonly base: string;
  readonly port: number;
  readonly dir: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM (Node-RED closes its flows and flushes context), then waits for the exit; SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts `node-red/red.js` on `dir` with `settings` (JSON-able: uiHost, uiPort, userDir and a quiet
 * editor are added) and waits until its admin API answers. The same dir and port start it again.
 */
export async function startNodeRed(dir: string, settings: Record<string, unknown> = {}, port?: number): Promise<NodeRedProcess> {
  const uiPort = port ?? (await freePort());
  const link = path.join(dir, 'node_modules', '@flowreport', 'node-red-scb-m2m');
  if (!fs.existsSync(link)) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(ROOT, link, 'dir');
  }
  const all = {
    uiHost: '127.0.0.1',
    uiPort,
    userDir: dir,
    flowFile: 'flows.json',
    editorTheme: { tours: false },
    diagnostics: { enabled: false },
    telemetry: { enabled: false },
    ...settings,
  };
  fs.writeFileSync(path.join(dir, 'settings.js'), `module.exports = ${JSON.stringify(all)};\n`);
  const child: ChildProcess = spawn(process.execPath, [path.join(nodeRedDir(), 'red.js'), '--settings', path.join(dir, 'settings.js'), '--userDir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${uiPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`${base}/auth/login`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`Node-RED did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    base,
    port: uiPort,
    dir,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
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
  await waitUntil(() => startedFlows(nr) > started, `the deployed flows to start (log: ${nr.output().slice(-500)})`, 10_000);
}
