/**
 * A Node-RED runtime in a benchmark worker's own process: node-red-node-test-helper (untyped,
 * hence the few types here) with our real nodes, as the tests load them.
 */
import * as path from 'node:path';

export interface FlowMessage {
  [key: string]: unknown;
}
export interface FlowNode {
  receive(msg: FlowMessage): void;
  on(event: 'input', listener: (msg: FlowMessage) => void): void;
}
export interface TestHelper {
  init(runtimePath: string, settings?: Record<string, unknown>): void;
  load(
    modules: unknown[],
    flow: Array<Record<string, unknown>>,
    credentials: Record<string, Record<string, string>>,
  ): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): FlowNode | null;
  /** The helper wraps every Node.prototype method in a sinon spy that keeps each call's arguments. */
  _sandbox: { restore(): void };
}

/** The helper on this Node-RED, with `settings` (the journal's folder among them), and our node modules. */
export function testRuntime(settings: Record<string, unknown>): { helper: TestHelper; scbModules: unknown[] } {
  const helper = require('node-red-node-test-helper') as TestHelper;
  helper.init(require.resolve('node-red'), { logging: { console: { level: 'warn' } }, ...settings });
  const root = path.join(__dirname, '..');
  const scbModules = ['scb-m2m-config', 'scb-m2m-upload', 'scb-m2m-history'].map(
    (type) => require(path.join(root, 'nodes', type, `${type}.js`)) as unknown,
  );
  return { helper, scbModules };
}
