/**
 * The SCB sidebar's runtime part: pushes every change of a delivery to the editors (RED.comms),
 * and "check now": one history request for a delivery still undecided, its answer written to the
 * journal. The journal (lib/journal) comes in through `JournalSources`, so the unit tests can run
 * this with a stand-in RED and journal (node-red-node-test-helper does not run plugins).
 */
import type { EventEmitter } from 'node:events';
import type { DeliveryDecision, DeliveryRecord, DeliveryState, DeliveryUpdate } from '../../lib/journal/types';
import { historyMessages, isM2MError, type ErrorCode } from '../../lib';
import type { AdminResponse, NodeAPI } from '../../nodes/shared/red';
import { errorReport, findConfigNode } from '../../nodes/scb-m2m-config/model';

export const PLUGIN_ID = 'scb-m2m-deliveries';
/** The comms topic the sidebar subscribes to; each message is `{ configId, record }`. */
export const TOPIC = 'scb-m2m/deliveries';
export const CHECK_ROUTE = '/scb-m2m/deliveries/:configId/:id/check';
/** The states "check now" may ask SCB about: sent, and still undecided when the history poll gave up. */
export const CHECKABLE: readonly DeliveryState[] = ['sent', 'pending'];

/** What the plugin needs of a config node's journal. */
export interface JournalAccess {
  get(id: string): DeliveryRecord | null | undefined;
  update(id: string, update: DeliveryUpdate): unknown;
}

export interface JournalSources {
  /** Emits 'change' with the record on every change of any journal. */
  journalEvents: EventEmitter;
  journalFor(RED: NodeAPI, configId: string): Promise<JournalAccess>;
}

/** A record as the editors get it: without the stored msg (a flow's data, not the sidebar's) or the poll's msg. */
export function forSidebar(record: DeliveryRecord): Omit<DeliveryRecord, 'msg' | 'poll'> {
  const { msg: _msg, poll: _poll, ...shown } = record;
  return shown;
}

/** An answer to the editor: an HTTP status and an error a person reads. */
class CheckRefused extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function registerDeliveriesPlugin(RED: NodeAPI, sources: JournalSources): void {
  async function checkNow(configId: string, id: string): Promise<DeliveryRecord> {
    const config = findConfigNode(RED, configId);
    if (!config) throw new CheckRefused(404, 'NOT_DEPLOYED', RED._('scb-m2m-deliveries.errors.not-deployed'));
    const journal = await sources.journalFor(RED, configId);
    const record = journal.get(id);
    if (!record)
      throw new CheckRefused(404, 'NO_SUCH_DELIVERY', RED._('scb-m2m-deliveries.errors.no-delivery', { id }));
    if (!record.uploadId || !CHECKABLE.includes(record.state)) {
      throw new CheckRefused(
        409,
        'NOT_CHECKABLE',
        RED._('scb-m2m-deliveries.errors.not-checkable', { state: record.state }),
      );
    }
    const client = await config.acquireClient();
    const answer = await client.history(record.uploadId);
    const decision: DeliveryDecision = {
      status: answer.status,
      body: answer.body,
      messages: historyMessages(answer.body),
      at: new Date().toISOString(),
    };
    // Still undecided: the answer is noted, the state stays (a history poll may still be waiting for it).
    const state = answer.status === 'pending' ? record.state : answer.status;
    await journal.update(id, { state, decision, note: RED._('scb-m2m-deliveries.note.checked') });
    return journal.get(id) ?? record;
  }

  function refuse(res: AdminResponse, err: unknown) {
    if (err instanceof CheckRefused) {
      res
        .status(err.statusCode)
        .json({ ok: false, error: { kind: 'validation', code: err.code, message: err.message } });
    } else {
      // SCB's answer or the connection failed: the editor shows why, as the config dialog does.
      res.status(isM2MError(err) ? 200 : 500).json({ ok: false, error: errorReport(err) });
    }
  }

  RED.plugins.registerPlugin(PLUGIN_ID, {
    onadd() {
      sources.journalEvents.on('change', (record: DeliveryRecord) => {
        RED.comms.publish(TOPIC, { configId: record.configId, record: forSidebar(record) }, false);
      });
      RED.httpAdmin.post(CHECK_ROUTE, RED.auth.needsPermission('scb-m2m-deliveries.write'), (req, res) => {
        checkNow(req.params.configId, req.params.id).then(
          (record) => res.json({ ok: true, record: forSidebar(record) }),
          (err: unknown) => refuse(res, err),
        );
      });
    },
  });
}
