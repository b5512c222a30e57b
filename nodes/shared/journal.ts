/**
 * The delivery journal as the nodes use it: where it lives (settings.js `scbM2mJournalDir`, else
 * `<userDir>/scb-m2m-journal`), what of a msg and an error goes in it, and which deliveries this
 * process is working on right now (so a start-up check never takes a running upload for a lost one).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { isM2MError } from '../../lib';
import { openJournal, type DeliveryError, type DeliveryNodeRef, type Journal } from '../../lib/journal';
import type { Node, NodeAPI, NodeMessage } from './red';

/** Deliveries some node of this process is sending or polling now. */
export const working = new Set<string>();

export function journalDir(RED: NodeAPI): string {
  const configured = RED.settings.scbM2mJournalDir;
  if (typeof configured === 'string' && configured.trim() !== '') return path.resolve(configured);
  const userDir =
    typeof RED.settings.userDir === 'string' ? RED.settings.userDir : path.join(os.homedir(), '.node-red');
  return path.join(userDir, 'scb-m2m-journal');
}

export function journalFor(
  RED: NodeAPI,
  configId: string,
  log?: (level: 'debug' | 'warn', message: string) => void,
): Promise<Journal> {
  const days = Number(RED.settings.scbM2mJournalRetentionDays);
  return openJournal(journalDir(RED), configId, {
    ...(Number.isFinite(days) && days > 0 && { retentionDays: days }),
    ...(RED.settings.scbM2mJournalSync === false && { sync: false }),
    log,
  });
}

export function nodeRef(node: Node): DeliveryNodeRef {
  return { id: node.id, type: node.type, ...(node.name && { name: node.name }), ...(node.z && { z: node.z }) };
}

/** Larger msgs are kept without their payload: the journal is a record, not a store of data. */
const MAX_STORED_MSG = 64 * 1024;

/**
 * A copy of msg that JSON can hold: without http req/res, without the payload when it is the
 * file's content (kept in the spool instead), without anything that cannot be written.
 */
export function storableMsg(msg: NodeMessage, withoutPayload = false): Record<string, unknown> {
  const skip = new Set(['req', 'res', ...(withoutPayload ? ['payload'] : [])]);
  const copy = (drop: Set<string>) =>
    JSON.parse(
      JSON.stringify(msg, function (this: unknown, key, value: unknown) {
        return this === msg && drop.has(key) ? undefined : value;
      }),
    ) as Record<string, unknown>;
  try {
    const stored = copy(skip);
    return JSON.stringify(stored).length <= MAX_STORED_MSG ? stored : copy(new Set([...skip, 'payload']));
  } catch {
    return { _msgid: msg._msgid };
  }
}

/** An error as msg.scbError and the journal show it: kind, code, message, hint (and statusCode). */
export function errorOf(err: unknown): DeliveryError {
  if (isM2MError(err)) {
    return {
      kind: err.kind,
      code: err.code,
      message: err.reason,
      ...(err.hint && { hint: err.hint }),
      ...(err.statusCode !== undefined && { statusCode: err.statusCode }),
    };
  }
  return { kind: 'internal', code: 'UNEXPECTED', message: err instanceof Error ? err.message : String(err) };
}

/** The error of work cut short by a redeploy or shutdown: it is resumed, not reported. */
export function isInterruption(err: unknown, signal?: AbortSignal): boolean {
  return !!signal?.aborted || (isM2MError(err) && (err.code === 'ABORTED' || err.code === 'CLIENT_CLOSED'));
}

/** Runs journal work whose failure must not stop the delivery (a status record): a warning instead. */
export function recordQuietly(node: Node, work: Promise<unknown>): void {
  work.catch((err: unknown) => node.warn(`Delivery journal: ${err instanceof Error ? err.message : String(err)}`));
}
