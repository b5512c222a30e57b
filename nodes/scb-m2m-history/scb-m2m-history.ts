/**
 * scb-m2m-history: whether SCB accepted an upload, once or by polling until it is decided;
 * without an upload id, the list of uploads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ValidationError } from '../../lib';
import type { ScbStatus } from '../../lib/api';
import type { HistoryResult, RequestOptions } from '../../lib/types';
import type { M2MClient } from '../../lib';
import type { NodeAPI, NodeDef, Node, NodeMessage, NodeStatus, SendFunction } from '../shared/red';
import { handleInput } from '../shared/flow-node';
import { logLine } from '../shared/log';
import { PollRegistry, type PollStore, type SavedPoll } from './polls';

interface HistoryDef extends NodeDef {
  config?: string;
  mode?: string;
  interval?: string | number;
  timeout?: string | number;
  rule?: string;
}

const OUTPUTS: readonly ScbStatus[] = ['accepted', 'rejected', 'pending'];
const STATUS_LOOK: Record<ScbStatus, NodeStatus> = {
  accepted: { fill: 'green', shape: 'dot' },
  rejected: { fill: 'red', shape: 'dot' },
  pending: { fill: 'yellow', shape: 'ring' },
};
const DEFAULT_INTERVAL_S = 30;
const DEFAULT_TIMEOUT_S = 3600;

function milliseconds(value: unknown, fallbackSeconds: number): number {
  const seconds = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : fallbackSeconds) * 1000;
}

export = function (RED: NodeAPI): void {
  /** msg.uploadId, else msg.payload.uploadId, else msg.payload.deliveryId; undefined: none given. */
  function uploadIdOf(msg: NodeMessage): string | undefined {
    const payload =
      msg.payload && typeof msg.payload === 'object' && !Buffer.isBuffer(msg.payload) ? (msg.payload as Record<string, unknown>) : {};
    const candidates: Array<[string, unknown]> = [
      ['msg.uploadId', msg.uploadId],
      ['msg.payload.uploadId', payload.uploadId],
      ['msg.payload.deliveryId', payload.deliveryId],
    ];
    const found = candidates.find(([, value]) => value !== undefined && value !== null);
    if (!found) return undefined;
    const [origin, value] = found;
    if (typeof value !== 'string' || value.trim() === '') {
      throw new ValidationError(RED._('scb-m2m-history.errors.bad-upload-id', { origin, type: typeof value }), {
        code: 'INVALID_UPLOAD_ID',
        field: 'uploadId',
        value: typeof value,
      });
    }
    return value.trim();
  }

  function ScbM2mHistoryNode(this: Node, def: HistoryDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const poll = def.mode === 'poll';
    const intervalMs = milliseconds(def.interval, DEFAULT_INTERVAL_S);
    const timeoutMs = milliseconds(def.timeout, DEFAULT_TIMEOUT_S);
    // Node-RED's node API beyond what the other nodes need (nodes/shared/red.ts).
    const flowNode = node as Node & { context(): PollStore; send: SendFunction };
    const polls = new PollRegistry(
      (count) => {
        if (count > 0) node.status({ fill: 'blue', shape: 'ring', text: RED._('scb-m2m-history.status.polling', { count }) });
      },
      flowNode.context(),
      (err) => node.warn(RED._('scb-m2m-history.errors.poll-store', { reason: err.message })),
    );
    // Polls resumed from the context have no input event: this stops them on close. Registered
    // before handleInput's close, so the registry is frozen before any poll is aborted.
    const resumed = new AbortController();
    node.on('close', (_removed, done) => {
      const unfinished = polls.freeze();
      // Without a persistent context store they are gone with this node: say which, so nothing is lost unseen.
      if (unfinished.length > 0) node.warn(RED._('scb-m2m-history.warnings.polls-stopped', { count: unfinished.length, ids: unfinished.join(', ') }));
      resumed.abort();
      done();
    });

    // The classification rule is prepared once; a broken one is reported at deploy and on each msg.
    const ruleText = (def.rule ?? '').trim();
    let rule: unknown;
    let ruleError: ValidationError | undefined;
    if (ruleText) {
      try {
        rule = RED.util.prepareJSONataExpression(ruleText, node);
      } catch (err) {
        ruleError = new ValidationError(RED._('scb-m2m-history.errors.bad-rule', { reason: err instanceof Error ? err.message : String(err) }), {
          code: 'INVALID_RULE',
          field: 'rule',
          value: ruleText,
        });
        node.error(ruleError.message);
        node.status({ fill: 'red', shape: 'ring', text: RED._('scb-m2m-history.status.bad-rule') });
      }
    }

    const flow = handleInput(RED, node, def.config, async (msg, { client, signal, send }) => {
      if (ruleError) throw ruleError;
      const uploadId = uploadIdOf(msg);
      if (uploadId === undefined) {
        const list = await client.history(undefined, { signal });
        deliver(msg, send, list, 'accepted', RED._('scb-m2m-history.status.list', { count: Array.isArray(list.body) ? list.body.length : 0 }));
      } else if (poll) {
        await pollUntilDecided(client, uploadId, Date.now() + timeoutMs, msg, send, signal);
      } else {
        const { result, status } = await check(client, uploadId, { signal });
        deliver(msg, send, result, status);
      }
    });

    function applyRule(record: unknown): Promise<ScbStatus> {
      return new Promise((resolve, reject) =>
        RED.util.evaluateJSONataExpression(rule, record, (err, value) => {
          if (!err && typeof value === 'string' && (OUTPUTS as readonly string[]).includes(value)) return resolve(value as ScbStatus);
          reject(
            new ValidationError(
              RED._('scb-m2m-history.errors.rule-result', { result: err ? err.message : JSON.stringify(value) ?? 'undefined' }),
              { code: 'INVALID_RULE_RESULT', field: 'rule', value: ruleText },
            ),
          );
        }),
      );
    }

    async function check(client: M2MClient, uploadId: string, options: RequestOptions) {
      const result = await client.history(uploadId, options);
      const status = rule ? await applyRule(result.body) : result.status;
      if (status === 'pending') node.debug(logLine.history(uploadId, status));
      else node.log(logLine.history(uploadId, status));
      return { result, status };
    }

    function deliver(msg: NodeMessage, send: SendFunction, result: HistoryResult, status: ScbStatus, text?: string) {
      msg.payload = result.body;
      msg.scbStatus = status;
      msg.statusCode = result.statusCode;
      if (polls.size === 0) node.status({ ...STATUS_LOOK[status], text: text ?? RED._(`scb-m2m-history.status.${status}`) });
      send(OUTPUTS.map((output) => (output === status ? msg : null)));
    }

    /** Asks again every interval until SCB decides or the timeout passes; a chain of timers, never blocking other msgs. */
    async function pollUntilDecided(client: M2MClient, uploadId: string, deadline: number, msg: NodeMessage, send: SendFunction, signal: AbortSignal) {
      const key = polls.add(uploadId, deadline, msg);
      try {
        for (;;) {
          const { result, status } = await check(client, uploadId, { signal });
          const remaining = deadline - Date.now();
          if (status !== 'pending' || remaining <= 0) {
            polls.delete(key);
            deliver(msg, send, result, status);
            return;
          }
          // ±10 %: uploads sent together (a folder dropped at once) drift apart instead of asking in bursts.
          const jittered = intervalMs * (0.9 + Math.random() * 0.2);
          await sleep(Math.min(jittered, remaining), undefined, { signal });
        }
      } finally {
        polls.delete(key);
      }
    }

    /**
     * A poll left unfinished by a restart or redeploy: same outputs, same rule; a failure goes to
     * a Catch node with its msg and shows on the status, as for a msg that came in.
     */
    async function resume(saved: SavedPoll) {
      // The memory store answers at once, inside this constructor: Node-RED wires the flow's Catch
      // nodes only after every node is created, so report nothing before the flow has started.
      await new Promise(setImmediate);
      try {
        if (ruleError) throw ruleError;
        if (!flow.config) throw flow.noConfig();
        const client = await flow.config.acquireClient();
        await pollUntilDecided(client, saved.uploadId, saved.deadline, saved.msg, (out) => flowNode.send(out), resumed.signal);
      } catch (err) {
        if (!resumed.signal.aborted) node.error(flow.failed(saved.msg, err), saved.msg);
      }
    }
    polls.restore((saved) => void resume(saved));
  }
  RED.nodes.registerType('scb-m2m-history', ScbM2mHistoryNode as (this: never, def: never) => void);
};
