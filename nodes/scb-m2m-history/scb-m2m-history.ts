/**
 * scb-m2m-history: whether SCB accepted an upload, once or by polling until it is decided;
 * without an upload id, the list of uploads.
 */
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ValidationError, historyMessages, isM2MError } from '../../lib';
import { UNKNOWN_UPLOAD_GRACE_MS, type ScbStatus } from '../../lib/api';
import type { HistoryResult, RequestOptions } from '../../lib/types';
import type { M2MClient } from '../../lib';
import type { DeliveryRecord, Journal } from '../../lib/journal';
import { moveFile } from '../../lib/move-file';
import type { NodeAPI, NodeDef, Node, NodeMessage, NodeStatus, SendFunction } from '../shared/red';
import { handleInput } from '../shared/flow-node';
import { folderOf } from '../shared/folder';
import { logLine } from '../shared/log';
import { errorOf, isInterruption, journalFor, nodeRef, storableMsg, working } from '../shared/journal';

interface HistoryDef extends NodeDef {
  config?: string;
  mode?: string;
  interval?: string | number;
  timeout?: string | number;
  rule?: string;
  acceptedDir?: string;
  acceptedDirType?: string;
  rejectedDir?: string;
  rejectedDirType?: string;
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
  const seconds =
    typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : fallbackSeconds) * 1000;
}

export = function (RED: NodeAPI): void {
  /** msg.uploadId, else msg.payload.uploadId, else msg.payload.deliveryId; undefined: none given. */
  function uploadIdOf(msg: NodeMessage): string | undefined {
    const payload =
      msg.payload && typeof msg.payload === 'object' && !Buffer.isBuffer(msg.payload)
        ? (msg.payload as Record<string, unknown>)
        : {};
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
    const graceSetting = Number(RED.settings.scbM2mUnknownUploadGraceMs);
    const graceMs = Number.isFinite(graceSetting) && graceSetting >= 0 ? graceSetting : UNKNOWN_UPLOAD_GRACE_MS;
    /** Journal records this node is polling now (the status counts them). */
    const polling = new Set<string>();
    const showPolling = () => {
      if (polling.size > 0)
        node.status({
          fill: 'blue',
          shape: 'ring',
          text: RED._('scb-m2m-history.status.polling', { count: polling.size }),
        });
    };

    // The classification rule is prepared once; a broken one is reported at deploy and on each msg.
    const ruleText = (def.rule ?? '').trim();
    let rule: ReturnType<typeof RED.util.prepareJSONataExpression> | undefined;
    let ruleError: ValidationError | undefined;
    if (ruleText) {
      try {
        rule = RED.util.prepareJSONataExpression(ruleText, node);
      } catch (err) {
        ruleError = new ValidationError(
          RED._('scb-m2m-history.errors.bad-rule', { reason: err instanceof Error ? err.message : String(err) }),
          {
            code: 'INVALID_RULE',
            field: 'rule',
            value: ruleText,
          },
        );
        node.error(ruleError.message);
        node.status({ fill: 'red', shape: 'ring', text: RED._('scb-m2m-history.status.bad-rule') });
      }
    }

    const flow = handleInput(RED, node, def.config, async (msg, { config, client, signal, send }) => {
      if (ruleError) throw ruleError;
      const uploadId = uploadIdOf(msg);
      if (uploadId === undefined) {
        const list = await client.history(undefined, { signal });
        deliver(
          msg,
          send,
          list,
          'accepted',
          RED._('scb-m2m-history.status.list', { count: Array.isArray(list.body) ? list.body.length : 0 }),
        );
        return;
      }
      const journal = await journalFor(RED, config.id);
      let record = journal.findByUploadId(uploadId);
      if (poll) {
        // The poll lives in the journal, so a restart or redeploy picks it up again.
        const pollOf = { nodeId: node.id, deadline: Date.now() + timeoutMs, msg: storableMsg(msg) };
        record = record
          ? await journal.update(record.id, { poll: pollOf })
          : await journal.create({
              state: 'sent',
              uploadId,
              node: nodeRef(node),
              poll: pollOf,
              note: RED._('scb-m2m-history.journal.polled-only'),
            });
        await pollUntilDecided(client, journal, record, msg, send, signal);
        return;
      }
      const { result, status } = await check(client, uploadId, record);
      if (record && status !== 'pending') await decide(journal, record, result, status);
      await finish(msg, send, result, status);
    });

    function applyRule(expression: NonNullable<typeof rule>, record: unknown): Promise<ScbStatus> {
      return new Promise((resolve, reject) =>
        RED.util.evaluateJSONataExpression(expression, record as NodeMessage, (err, value) => {
          if (!err && typeof value === 'string' && (OUTPUTS as readonly string[]).includes(value))
            return resolve(value as ScbStatus);
          reject(
            new ValidationError(
              RED._('scb-m2m-history.errors.rule-result', {
                result: err ? err.message : (JSON.stringify(value) ?? 'undefined'),
              }),
              { code: 'INVALID_RULE_RESULT', field: 'rule', value: ruleText },
            ),
          );
        }),
      );
    }

    /**
     * SCB's answer for one upload, classified. A 404 for an uploadId that SCB itself gave (an
     * upload on record) is "not known yet" for a grace period, then reported: never "not delivered".
     */
    async function check(
      client: M2MClient,
      uploadId: string,
      record: DeliveryRecord | undefined,
      options: RequestOptions = {},
    ) {
      let result: HistoryResult;
      try {
        result = await client.history(uploadId, options);
      } catch (err) {
        const sentAt = record?.target ? record.changes.find((c) => c.state === 'sent')?.at : undefined;
        if (!(isM2MError(err) && err.code === 'UNKNOWN_UPLOAD_ID' && sentAt)) throw err;
        if (Date.now() - Date.parse(sentAt) < graceMs)
          return {
            result: { statusCode: 404, body: null, status: 'pending' as ScbStatus },
            status: 'pending' as ScbStatus,
          };
        throw new ValidationError(RED._('scb-m2m-history.errors.unknown-upload', { uploadId, sentAt }), {
          code: 'UNKNOWN_UPLOAD_ID',
          field: 'uploadId',
          value: uploadId,
          statusCode: 404,
          hint: RED._('scb-m2m-history.errors.unknown-upload-hint'),
        });
      }
      const status = rule ? await applyRule(rule, result.body) : result.status;
      if (status === 'pending') node.debug(logLine.history(uploadId, status));
      else node.log(logLine.history(uploadId, status));
      return { result, status };
    }

    /** The decision on record (and the poll closed) before it goes out: it comes out once. */
    async function decide(
      journal: Journal,
      record: DeliveryRecord,
      result: HistoryResult,
      status: ScbStatus,
      pollEnded = false,
    ) {
      if (status === 'pending' && !pollEnded) return;
      await journal.update(record.id, {
        state: status,
        decision: { status, body: result.body, messages: historyMessages(result.body), at: new Date().toISOString() },
        ...(pollEnded && { poll: undefined }),
      });
    }

    /** Where a decided file goes: the node's folder for the decision, if it has one. */
    function folderFor(status: ScbStatus, msg: NodeMessage): Promise<string | undefined> {
      const [value, type] =
        status === 'accepted'
          ? [def.acceptedDir, def.acceptedDirType]
          : status === 'rejected'
            ? [def.rejectedDir, def.rejectedDirType]
            : [];
      return folderOf(RED, node, { value, type, field: `${status}Dir` }, msg);
    }

    /** Moves the decided file (msg.filename) to its folder, then answers on the decision's output. */
    async function finish(msg: NodeMessage, send: SendFunction, result: HistoryResult, status: ScbStatus) {
      msg.scbMessages = historyMessages(result.body);
      const dir = await folderFor(status, msg);
      if (dir && typeof msg.filename === 'string' && msg.filename !== '') {
        const from = path.resolve(RED.settings.fileWorkingDirectory ?? process.cwd(), msg.filename);
        try {
          msg.filename = await moveFile(from, dir);
          msg.movedFrom = from;
        } catch (err) {
          throw new ValidationError(
            RED._('scb-m2m-history.errors.move-failed', {
              from,
              dir,
              reason: (err as NodeJS.ErrnoException).code ?? String(err),
            }),
            {
              code: 'MOVE_FAILED',
              field: `${status}Dir`,
              value: dir,
            },
          );
        }
      }
      deliver(msg, send, result, status);
    }

    function deliver(msg: NodeMessage, send: SendFunction, result: HistoryResult, status: ScbStatus, text?: string) {
      msg.payload = result.body;
      msg.scbStatus = status;
      msg.statusCode = result.statusCode;
      if (polling.size === 0)
        node.status({ ...STATUS_LOOK[status], text: text ?? RED._(`scb-m2m-history.status.${status}`) });
      send(OUTPUTS.map((output) => (output === status ? msg : null)));
    }

    /** Asks again every interval until SCB decides or the timeout passes; a chain of timers, never blocking other msgs. */
    async function pollUntilDecided(
      client: M2MClient,
      journal: Journal,
      record: DeliveryRecord,
      msg: NodeMessage,
      send: SendFunction,
      signal: AbortSignal,
    ) {
      const uploadId = record.uploadId as string;
      const deadline = record.poll?.deadline ?? Date.now();
      polling.add(record.id);
      working.add(record.id);
      showPolling();
      try {
        for (;;) {
          const { result, status } = await check(client, uploadId, journal.get(record.id), { signal });
          const remaining = deadline - Date.now();
          if (status !== 'pending' || remaining <= 0) {
            await decide(journal, record, result, status, true);
            polling.delete(record.id);
            await finish(msg, send, result, status);
            return;
          }
          // ±10 %: uploads sent together (a folder dropped at once) drift apart instead of asking in bursts.
          const jittered = intervalMs * (0.9 + Math.random() * 0.2);
          await sleep(Math.min(jittered, remaining), undefined, { signal });
        }
      } catch (err) {
        // Stopped by a redeploy or shutdown: the poll stays on record for the next start. Failed: it is over (the Catch node has it).
        if (!isInterruption(err, signal) && journal.get(record.id)?.poll)
          await journal.update(record.id, {
            poll: undefined,
            note: RED._('scb-m2m-history.journal.poll-failed', { reason: errorOf(err).message }),
          });
        throw err;
      } finally {
        polling.delete(record.id);
        working.delete(record.id);
        showPolling();
      }
    }

    // Polls carried by the journal across redeploys and restarts: resumed once the flow has started
    // (Catch nodes are wired only then), same outputs and rule; a failure reaches a Catch node.
    const resumed = new AbortController();
    const resuming = new Set<Promise<void>>();
    node.on('close', (_removed: boolean, done: () => void) => {
      resumed.abort();
      void Promise.allSettled([...resuming]).then(() => done());
    });
    async function resume(journal: Journal, record: DeliveryRecord) {
      const msg: NodeMessage = { ...(record.poll?.msg ?? {}) };
      try {
        if (ruleError) throw ruleError;
        if (!flow.config) throw flow.noConfig();
        const client = await flow.config.acquireClient();
        await pollUntilDecided(client, journal, record, msg, (out) => node.send(out), resumed.signal);
      } catch (err) {
        if (!resumed.signal.aborted) node.error(flow.failed(msg, err), msg);
      }
    }
    setImmediate(() => {
      const config = flow.config;
      if (!config) return;
      journalFor(RED, config.id).then(
        (journal) => {
          for (const record of journal.list().reverse()) {
            if (record.poll?.nodeId !== node.id || !record.uploadId || working.has(record.id)) continue;
            const task = resume(journal, record);
            resuming.add(task);
            void task.finally(() => resuming.delete(task));
          }
        },
        (err: unknown) => node.error(flow.failed({}, err)),
      );
    });
  }
  RED.nodes.registerType('scb-m2m-history', ScbM2mHistoryNode);
};
