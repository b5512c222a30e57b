/**
 * The part every flow node (heartbeat, upload, history) shares: finding its config node,
 * running each message's async work so that nothing is thrown out of the handler and every
 * msg ends in exactly one done(), and stopping that work when the node closes. How a failure is
 * reported (failures()) is also the outbox node's, which needs no client.
 */
import { setMaxListeners } from 'node:events';
import type { M2MClient } from '../../lib';
import { ValidationError, isM2MError } from '../../lib';
import type { DoneFunction, Node, NodeAPI, NodeMessage, NodeStatus, SendFunction } from './red';
import { type ScbM2mConfigNode, findConfigNode } from '../scb-m2m-config/model';
import { errorOf } from './journal';

export interface InputContext {
  config: ScbM2mConfigNode;
  client: M2MClient;
  /** Aborted when the node closes (redeploy, shutdown). */
  signal: AbortSignal;
  send: SendFunction;
}

export type InputHandler = (msg: NodeMessage, ctx: InputContext) => Promise<void>;

/** What handleInput gives back, for work that does not start with an input msg (a resumed poll). */
export interface FlowNodeConfig {
  config: ScbM2mConfigNode | null;
  /** The error for "no config node selected", in the node's catalog. */
  noConfig(): Error;
  /** Marks msg and the node's status as handleInput does for a failed msg; returns the Error for node.error(err, msg). */
  failed(msg: NodeMessage, err: unknown): Error;
}

/** How a flow node reports a missing config node and a failed msg, in its own message catalog. */
export function failures(
  RED: NodeAPI,
  node: Node,
  config: ScbM2mConfigNode | null,
): Pick<FlowNodeConfig, 'noConfig' | 'failed'> & { noConfigStatus(): NodeStatus } {
  const noConfig = () =>
    new ValidationError(RED._(`${node.type}.errors.no-config`), { code: 'NO_CONFIG', field: 'config' });
  const noConfigStatus = (): NodeStatus => ({
    fill: 'red',
    shape: 'ring',
    text: RED._(`${node.type}.status.no-config`),
  });
  /** msg.statusCode when the server answered, and a red ring naming the reason; the Error to report. */
  const failed = (msg: NodeMessage, err: unknown): Error => {
    const error = err instanceof Error ? err : new Error(String(err));
    if (isM2MError(error) && error.statusCode !== undefined) msg.statusCode = error.statusCode;
    // For a flow that routes on the fault (certificate to its owner, server faults to a retry) without parsing text.
    msg.scbError = errorOf(error);
    node.status(config ? config.statusFor(error) : noConfigStatus());
    return error;
  };
  return { noConfig, noConfigStatus, failed };
}

/**
 * Wires `handle` to the node's input. Success: done(). Failure: msg.statusCode when the
 * server answered, a red ring naming the reason, and done(err) with the original msg so a
 * Catch node gets it. Work cut short by close ends with done() alone: the flow is stopping.
 */
export function handleInput(RED: NodeAPI, node: Node, configId: unknown, handle: InputHandler): FlowNodeConfig {
  const config = findConfigNode(RED, configId);
  const { noConfig, noConfigStatus, failed } = failures(RED, node, config);
  if (config) config.register(node);
  else node.status(noConfigStatus());

  const controller = new AbortController();
  // Every msg in flight (hundreds of polls, say) listens to this one signal: that is by design, not a leak.
  setMaxListeners(0, controller.signal);
  const running = new Set<Promise<void>>();

  const run = async (msg: NodeMessage, send: SendFunction) => {
    if (!config) throw noConfig();
    const client = await config.acquireClient();
    await handle(msg, { config, client, signal: controller.signal, send });
  };

  node.on('input', (msg: NodeMessage, send: SendFunction, done: DoneFunction) => {
    const task = run(msg, send).then(
      () => done(),
      (err: unknown) => {
        if (controller.signal.aborted) return done();
        done(failed(msg, err));
      },
    );
    running.add(task);
    void task.then(() => running.delete(task));
  });

  node.on('close', (_removed: boolean, done: () => void) => {
    controller.abort();
    config?.deregister(node);
    void Promise.allSettled([...running]).then(() => done());
  });

  return { config, noConfig, failed };
}
