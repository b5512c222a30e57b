/**
 * Shared set-up of the node tests: node-red-node-test-helper with our real nodes and the core
 * catch node, flows wired to the real simulator, and ways to wait for events without sleeping.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startSimulator } from '../../simulator';
import type { Simulator, SimulatorOptions } from '../../simulator/types';
import type { NodeMessage, NodeStatus } from 'node-red';

/** The parts of node-red-node-test-helper (untyped) that the tests use. */
export interface TestNode {
  id: string;
  type: string;
  receive(msg: NodeMessage): void;
  on(event: 'input', listener: (msg: NodeMessage) => void): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  context(): { flow: { set(key: string, value: unknown): void }; global: { set(key: string, value: unknown): void } };
  status: { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> };
  log: { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> };
  debug: { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> };
  warn: { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> };
  error: { getCalls(): Array<{ thisValue: unknown; args: unknown[] }> };
}
interface SupertestRequest {
  get(url: string): SupertestCall;
  post(url: string): SupertestCall;
}
export interface SupertestCall extends PromiseLike<{ status: number; body: unknown; text: string }> {
  send(body: unknown): SupertestCall;
  set(name: string, value: string): SupertestCall;
}
export interface TestHelper {
  init(runtimePath: string, settings?: Record<string, unknown>): void;
  /** Merges runtime settings (RED.settings) for the next loads. */
  settings(userSettings: Record<string, unknown>): Record<string, unknown>;
  load(nodes: unknown[], flow: FlowNode[], credentials?: Record<string, Record<string, string>>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): TestNode;
  request(): SupertestRequest;
}

export type FlowNode = { id: string; type: string; z?: string; wires?: string[][]; [key: string]: unknown };

export const helper = require('node-red-node-test-helper') as TestHelper;
// SCB_M2M_NODE_RED: another Node-RED's package directory (scripts/test-node-red-5.sh); the helper takes its core nodes from the same tree.
helper.init(require.resolve(process.env.SCB_M2M_NODE_RED ?? 'node-red'));

// Suites that do not use nodeSuite keep their delivery journals here, never in the user's home.
const SUITE_JOURNAL_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-m2m-journal-'));
helper.settings({ scbM2mJournalDir: SUITE_JOURNAL_DIR });
process.on('exit', () => fs.rmSync(SUITE_JOURNAL_DIR, { recursive: true, force: true }));

const ROOT = path.join(__dirname, '..', '..');
/** Our node modules as package.json declares them, compiled beside their sources. */
export const scbNodes: unknown[] = Object.values(
  (require(path.join(ROOT, 'package.json')) as { 'node-red': { nodes: Record<string, string> } })['node-red'].nodes,
).map((file) => require(path.join(ROOT, file)));

export const TAB = 'tab';
export const CONFIG = 'cfg';

/** What nodeSuite's hooks set up, valid from `before` on. */
export interface NodeSuite {
  readonly simulator: Simulator;
  /** A temporary dir (only with `tmpDir`), removed after the suite. */
  readonly dir: string;
  /** This test's delivery journal folder (new for every test). */
  readonly journalDir: string;
  /** helper.settings() with this test's journal folder kept. */
  useSettings(settings?: Record<string, unknown>): void;
}

/**
 * Registers the hooks of a node suite against the simulator (call it inside `describe`): the
 * simulator (and a temp dir `<tmpDir>…` when asked) before all; after each test its faults cleared
 * and the flow unloaded; after all the flow unloaded, the simulator stopped and both dirs removed.
 */
export function nodeSuite(options: { simulator?: SimulatorOptions; tmpDir?: string } = {}): NodeSuite {
  const ctx = {} as { simulator: Simulator; dir: string; journalDir: string };
  before(async () => {
    ctx.simulator = await startSimulator(options.simulator);
    if (options.tmpDir) ctx.dir = fs.mkdtempSync(path.join(os.tmpdir(), options.tmpDir));
  });
  // Each test starts with an empty delivery journal: one test's deliveries are not the next one's duplicates.
  beforeEach(() => {
    ctx.journalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-m2m-journal-'));
    useSettings();
  });
  afterEach(async () => {
    ctx.simulator.faults.clear();
    await helper.unload();
    fs.rmSync(ctx.journalDir, { recursive: true, force: true });
  });
  after(async () => {
    await helper.unload();
    await ctx.simulator?.stop();
    for (const dir of [ctx.dir, ctx.simulator?.dir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  /** Runtime settings for the next loads, always with this test's journal folder. */
  function useSettings(settings: Record<string, unknown> = {}): void {
    helper.settings({ scbM2mJournalDir: ctx.journalDir, ...settings });
  }
  return Object.assign(ctx, { useSettings });
}

/** A tab, a catch node wired to helper `caught`, and the config node pointing at the simulator. */
export function baseFlow(simulator: Simulator, config: Record<string, unknown> = {}): FlowNode[] {
  return [
    { id: TAB, type: 'tab', label: 'test' },
    { id: 'catcher', type: 'catch', z: TAB, scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: TAB },
    {
      id: CONFIG,
      type: 'scb-m2m-config',
      name: '',
      environment: 'custom',
      baseUrl: simulator.url,
      apiVersion: 'v2',
      certPath: simulator.certificates.valid.path,
      certName: '',
      caPath: simulator.caPath,
      organisationsnummer: '',
      undersokning: '',
      expiryWarningDays: 30,
      ...config,
    },
  ];
}

/** The history node's outputs, in order. */
export const HISTORY_OUTPUTS = ['accepted', 'rejected', 'pending'] as const;

/** Upload node `up` on the test tab for the config node `cfg`: referensperiod and filformat set, `props` over them. */
export function uploadNode(wires: string[][], props: Record<string, unknown> = {}): FlowNode {
  return {
    id: 'up',
    type: 'scb-m2m-upload',
    z: TAB,
    config: CONFIG,
    referensperiod: '2026-06-30',
    referensperiodType: 'str',
    filformat: 'V40',
    filformatType: 'str',
    ...props,
    wires,
  };
}

/** History node `hist` (ask once) on the test tab, `props` over its defaults; by default output k to helper HISTORY_OUTPUTS[k]. */
export function historyNode(
  props: Record<string, unknown> = {},
  wires: string[][] = HISTORY_OUTPUTS.map((o) => [o]),
): FlowNode {
  return {
    id: 'hist',
    type: 'scb-m2m-history',
    z: TAB,
    config: CONFIG,
    mode: 'once',
    interval: 30,
    timeout: 3600,
    rule: '',
    ...props,
    wires,
  };
}

/** A helper node for each history output, named after it. */
export function historyOutputs(): FlowNode[] {
  return HISTORY_OUTPUTS.map((o) => ({ id: o, type: 'helper', z: TAB }));
}

/** Credentials of the config node: the passphrase of a simulator certificate, and optionally its .pfx bytes. */
export function credentialsOf(
  simulator: Simulator,
  name = 'valid',
  pfx?: Buffer,
): Record<string, Record<string, string>> {
  return {
    [CONFIG]: { passphrase: simulator.certificates[name].passphrase, ...(pfx && { pfx: pfx.toString('base64') }) },
  };
}

export async function load(flow: FlowNode[], credentials?: Record<string, Record<string, string>>): Promise<void> {
  await helper.load(scbNodes, flow, credentials ?? {});
}

/** The next `count` messages that reach a helper node. */
export function messages(nodeId: string, count = 1): Promise<NodeMessage[]> {
  const node = helper.getNode(nodeId);
  const got: NodeMessage[] = [];
  return new Promise((resolve) =>
    node.on('input', (msg: NodeMessage) => {
      got.push(msg);
      if (got.length === count) resolve(got);
    }),
  );
}

export async function nextMessage(nodeId: string): Promise<NodeMessage> {
  return (await messages(nodeId, 1))[0];
}

/** Every status a node has set since the flow was loaded, oldest first. */
export function statuses(node: TestNode): NodeStatus[] {
  return node.status
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => call.args[0] as NodeStatus);
}

export function lastStatus(node: TestNode): NodeStatus | undefined {
  return statuses(node).at(-1);
}

/** Polls a condition every 10 ms until it holds; fails after `timeoutMs` saying what was awaited. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves with what `promise` gives, or rejects when it does not settle in time. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Counts of Node's active handles by kind (TCP sockets, timers, ...). */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}
