/** scb-m2m-upload: sends one file to SCB and answers with its upload id. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { NetworkError, ValidationError, isM2MError } from '../../lib';
import { historyRecordMatches } from '../../lib/api';
import type { M2MClient } from '../../lib';
import {
  DuplicateGuard,
  sha256File,
  sha256Of,
  openJournals,
  type DeliveryRecord,
  type DeliverySource,
  type DeliveryTarget,
  type Journal,
} from '../../lib/journal';
import type { UploadRequest, UploadSource } from '../../lib/types';
import type { NodeAPI, NodeDef, Node, NodeMessage, SendFunction } from '../shared/red';
import { handleInput } from '../shared/flow-node';
import { logLine } from '../shared/log';
import {
  errorOf,
  isInterruption,
  journalDir,
  journalFor,
  nodeRef,
  recordQuietly,
  storableMsg,
  working,
} from '../shared/journal';

/** The fields a msg may override, in the order the dialog shows them. */
const FIELDS = ['organisationsnummer', 'undersokning', 'referensperiod', 'filformat', 'version'] as const;
type Field = (typeof FIELDS)[number];
/** Fields the config node gives a default for. */
const CONFIG_DEFAULTS = ['organisationsnummer', 'undersokning'] as const;
/** Fields without which no upload can be addressed; referensperiod and version are the client's to judge. */
const REQUIRED: readonly Field[] = ['organisationsnummer', 'undersokning', 'filformat'];

type UploadDef = NodeDef & { config?: string } & Partial<Record<Field | `${Field}Type`, string>>;

/** How much of an upload id the status shows: enough to recognise it in msg.uploadId. */
const SHORT_ID = 8;
/** States a node picks up again at start: never closed at SCB, or closed without an answer on record. */
const RESUMABLE = ['queued', 'sending', 'interrupted', 'closing'];

/** The content to send and what the journal keeps of where it came from. */
interface Content {
  source: UploadSource;
  journalled: DeliverySource;
  /** The bytes of an in-memory source, spooled while in flight. */
  bytes?: Buffer;
}

function describeTarget(t: DeliveryTarget): string {
  return [t.organisationsnummer, t.undersokning, t.referensperiod, t.filformat, t.version].filter(Boolean).join(', ');
}

export = function (RED: NodeAPI): void {
  /** A field's text: undefined when empty; numbers as typed; anything else is refused, naming where it came from. */
  function fieldText(value: unknown, field: string, origin: string): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
    throw new ValidationError(RED._('scb-m2m-upload.errors.not-text', { origin, type: typeof value }), {
      code: 'NOT_TEXT',
      field,
      value: typeof value,
    });
  }

  function evaluate(node: Node, value: string, type: string, msg: NodeMessage): Promise<unknown> {
    return new Promise((resolve, reject) =>
      RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => (err ? reject(err) : resolve(result))),
    );
  }

  function filnamnOf(msg: NodeMessage): string {
    const given = fieldText(msg.filnamn, 'filnamn', 'msg.filnamn');
    if (given !== undefined) return given;
    const filename = fieldText(msg.filename, 'filename', 'msg.filename');
    if (filename !== undefined) return path.basename(filename);
    throw new ValidationError(RED._('scb-m2m-upload.errors.no-filnamn'), { code: 'FILNAMN_MISSING', field: 'filnamn' });
  }

  function ScbM2mUploadNode(this: Node, def: UploadDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const short = (id: string) => (id.length > SHORT_ID ? `${id.slice(0, SHORT_ID)}…` : id);

    /** msg.<field>, else the node's property, else the config node's default. */
    async function fieldOf(
      field: Field,
      msg: NodeMessage,
      defaults: Record<string, string>,
    ): Promise<string | undefined> {
      const fromMsg = fieldText(msg[field], field, `msg.${field}`);
      if (fromMsg !== undefined) return fromMsg;
      const property = def[field] ?? '';
      const type = def[`${field}Type`] || 'str';
      if (property !== '') {
        const value = await evaluate(node, property, type, msg);
        const fromNode = fieldText(value, field, type === 'str' ? field : `${type}.${property}`);
        if (fromNode !== undefined) return fromNode;
      }
      return defaults[field] || undefined;
    }

    async function targetOf(msg: NodeMessage, defaults: Record<string, string>): Promise<DeliveryTarget> {
      const values: Partial<Record<Field, string>> = {};
      for (const field of FIELDS) values[field] = await fieldOf(field, msg, defaults);
      for (const field of REQUIRED) {
        if (values[field] === undefined) {
          const where = (CONFIG_DEFAULTS as readonly string[]).includes(field) ? 'missing-with-default' : 'missing';
          throw new ValidationError(RED._(`scb-m2m-upload.errors.${where}`, { field }), { code: 'MISSING', field });
        }
      }
      return {
        organisationsnummer: values.organisationsnummer ?? '',
        undersokning: values.undersokning ?? '',
        filformat: values.filformat ?? '',
        ...(values.referensperiod !== undefined && { referensperiod: values.referensperiod }),
        ...(values.version !== undefined && { version: values.version }),
        filnamn: filnamnOf(msg),
      };
    }

    /**
     * What to send, and what the journal keeps of where it came from: a Buffer payload, else the
     * file at msg.filename (streamed; its size and time as stated now), else a string payload.
     */
    async function contentOf(msg: NodeMessage): Promise<Content> {
      if (Buffer.isBuffer(msg.payload)) {
        return {
          source: { buffer: msg.payload },
          bytes: msg.payload,
          journalled: { kind: 'memory', encoding: 'buffer' },
        };
      }
      const filename = fieldText(msg.filename, 'filename', 'msg.filename');
      if (filename !== undefined) {
        const file = path.resolve(RED.settings.fileWorkingDirectory ?? process.cwd(), filename);
        const stat = await fs.stat(file).catch(() => undefined);
        if (!stat || !stat.isFile()) {
          throw new ValidationError(
            RED._(`scb-m2m-upload.errors.${stat ? 'not-a-file' : 'file-not-found'}`, { filename: file }),
            {
              code: stat ? 'NOT_A_FILE' : 'FILE_NOT_FOUND',
              field: 'filename',
              value: file,
            },
          );
        }
        return {
          source: { path: file },
          journalled: { kind: 'path', path: file, size: stat.size, mtimeMs: stat.mtimeMs },
        };
      }
      if (typeof msg.payload === 'string') {
        const bytes = Buffer.from(msg.payload, 'utf8');
        return { source: { buffer: bytes }, bytes, journalled: { kind: 'memory', encoding: 'utf8' } };
      }
      throw new ValidationError(RED._('scb-m2m-upload.errors.no-file'), { code: 'NO_FILE', field: 'payload' });
    }

    /**
     * Sends a journalled delivery and answers its msg. The record follows every step; the
     * closing request goes out only once "closing" is on disk, so a crash is never mistaken
     * for "not sent". Cut short by a redeploy or shutdown: recorded, not reported (resumed at start).
     */
    async function send(
      journal: Journal,
      record: DeliveryRecord,
      content: Content,
      msg: NodeMessage,
      client: M2MClient,
      signal: AbortSignal,
      output: SendFunction,
    ): Promise<void> {
      working.add(record.id);
      try {
        const target = record.target as DeliveryTarget;
        const request: UploadRequest = { ...target, source: content.source };
        node.status({ fill: 'blue', shape: 'ring', text: RED._('scb-m2m-upload.status.sending') });
        const result = await client.upload(request, {
          signal,
          onProgress: (p) => {
            node.debug(logLine.segment(request, p));
            if (p.segments > 1) {
              node.status({
                fill: 'blue',
                shape: 'ring',
                text: RED._('scb-m2m-upload.status.segment', { segment: p.segment, segments: p.segments }),
              });
            }
            recordQuietly(
              node,
              journal.update(record.id, { state: 'sending', segment: p.segment, segments: p.segments }),
            );
          },
          // A file's SHA-256 is taken from the bytes sent, on record before the close goes out.
          sha256: record.sha256 === undefined,
          beforeClosing: async ({ sha256 }) => {
            await journal.update(record.id, { state: 'closing', ...(sha256 && { sha256 }) });
          },
        });
        node.log(logLine.uploaded(request, result));
        await journal.update(record.id, {
          state: 'sent',
          uploadId: result.uploadId,
          ...(result.timeStamp && { timeStamp: result.timeStamp }),
        });
        if (content.bytes) await journal.dropSpool(record.id);
        msg.uploadId = result.uploadId;
        msg.statusCode = result.statusCode;
        msg.payload = result.body;
        node.status({
          fill: 'green',
          shape: 'dot',
          text: RED._('scb-m2m-upload.status.sent', { id: short(result.uploadId) }),
        });
        output(msg);
      } catch (err) {
        const closing = journal.get(record.id)?.state === 'closing';
        if (isInterruption(err, signal)) {
          // Closing when stopped: SCB may hold it; left "closing" for the next start to look up in the history.
          if (!closing)
            await journal.update(record.id, {
              state: 'interrupted',
              note: RED._('scb-m2m-upload.journal.interrupted'),
            });
          node.status({ fill: 'grey', shape: 'ring', text: RED._('scb-m2m-upload.status.interrupted') });
          return;
        }
        const unanswered = closing && !(isM2MError(err) && err.statusCode !== undefined);
        await journal.update(record.id, { state: unanswered ? 'uncertain' : 'failed', error: errorOf(err) });
        if (content.bytes) await journal.dropSpool(record.id);
        throw err;
      } finally {
        working.delete(record.id);
      }
    }

    const flow = handleInput(RED, node, def.config, async (msg, { config, client, signal, send: output }) => {
      const defaults: Record<string, string> = {};
      for (const field of CONFIG_DEFAULTS) defaults[field] = config[field];
      const target = await targetOf(msg, defaults);
      const content = await contentOf(msg);
      const journal = await journalFor(RED, config.id);
      const { journalled, bytes } = content;
      const size = journalled.kind === 'path' ? journalled.size : (bytes?.length ?? 0);
      const guard = new DuplicateGuard(await openJournals(journalDir(RED)), client.apiRoot, target, {
        size,
        ...(bytes && { sha256: sha256Of(bytes) }),
        ...(journalled.kind === 'path' && { file: journalled }),
      });
      const resend = msg.resend === true;
      // The guard decides and the record is made in one synchronous step: a second msg with the same file finds it.
      const created = await guard.run(({ earlier, sha256 }) => {
        if (earlier && !resend) {
          throw new ValidationError(
            RED._('scb-m2m-upload.errors.already-delivered', {
              filnamn: target.filnamn,
              target: describeTarget(target),
              at: earlier.createdAt,
              uploadId: earlier.uploadId ?? RED._('scb-m2m-upload.journal.no-upload-id'),
              state: earlier.state,
            }),
            { code: 'ALREADY_DELIVERED', field: 'resend', value: earlier.uploadId },
          );
        }
        return journal.create({
          target,
          environment: config.environment,
          server: client.apiRoot,
          source: journalled,
          size,
          ...(sha256 && { sha256 }),
          msg: storableMsg(msg, bytes !== undefined),
          node: nodeRef(node),
          ...(earlier && { resendOf: earlier.id }),
          ...(earlier && {
            note: RED._('scb-m2m-upload.journal.resend', { uploadId: earlier.uploadId ?? earlier.id }),
          }),
        });
      });
      if (bytes) await journal.spool(created.id, bytes);
      await send(journal, created, content, msg, client, signal, output);
    });

    /** Why a journalled source cannot be sent again as it was; undefined: it can, with this content. */
    async function reload(journal: Journal, record: DeliveryRecord, msg: NodeMessage): Promise<Content | string> {
      const source = record.source;
      if (!source) return 'source-gone';
      if (source.kind === 'memory') {
        const bytes = await journal.readSpool(record.id);
        if (!bytes) return 'source-gone';
        if (sha256Of(bytes) !== record.sha256) return 'source-changed';
        msg.payload = source.encoding === 'utf8' ? bytes.toString('utf8') : bytes;
        return { source: { buffer: bytes }, bytes, journalled: source };
      }
      const stat = await fs.stat(source.path).catch(() => undefined);
      if (!stat || !stat.isFile()) return 'source-gone';
      if (stat.size !== source.size || stat.mtimeMs !== source.mtimeMs) return 'source-changed';
      // Cut off before its data segments were all read, an upload has no SHA-256 on record yet.
      if (record.sha256 !== undefined && (await sha256File(source.path)).sha256 !== record.sha256)
        return 'source-changed';
      return { source: { path: source.path }, journalled: source };
    }

    /**
     * Closed at SCB without an answer on record: found in SCB's history, it is sent (its
     * result comes out as if answered); not found, it is reported and never sent again blindly.
     */
    async function settleClosing(
      journal: Journal,
      record: DeliveryRecord,
      msg: NodeMessage,
      client: M2MClient,
    ): Promise<void> {
      const target = record.target as DeliveryTarget;
      const closedAt = Date.parse(
        [...record.changes].reverse().find((c) => c.state === 'closing')?.at ?? record.updatedAt,
      );
      const known = new Set(
        (await openJournals(journalDir(RED))).flatMap((j) => j.list().map((r) => r.uploadId)).filter(Boolean),
      );
      let found: Array<{ record: unknown }> = [];
      try {
        const list = await client.history();
        found = (list.items ?? []).filter(
          (item) =>
            historyRecordMatches(item.record, target, closedAt) &&
            !known.has(String((item.record as Record<string, unknown>).id ?? '')),
        );
      } catch (err) {
        node.warn(RED._('scb-m2m-upload.warnings.history-unavailable', { reason: errorOf(err).message }));
      }
      const id = found.length === 1 ? (found[0].record as Record<string, unknown>).id : undefined;
      if (typeof id === 'string' && id !== '') {
        await journal.update(record.id, {
          state: 'sent',
          uploadId: id,
          note: RED._('scb-m2m-upload.journal.found-in-history'),
        });
        msg.uploadId = id;
        msg.statusCode = 200;
        msg.payload = found[0].record;
        node.status({ fill: 'green', shape: 'dot', text: RED._('scb-m2m-upload.status.sent', { id: short(id) }) });
        node.send(msg);
        return;
      }
      const which = found.length > 1 ? 'uncertain-ambiguous' : 'uncertain';
      const ids = found.map((f) => String((f.record as Record<string, unknown>).id ?? '')).join(', ');
      const err = new NetworkError(
        RED._(`scb-m2m-upload.errors.${which}`, {
          filnamn: target.filnamn,
          target: describeTarget(target),
          at: new Date(closedAt).toISOString(),
          count: found.length,
          ids,
        }),
        {
          code: 'DELIVERY_UNCERTAIN',
          retryable: false,
          hint: RED._('scb-m2m-upload.errors.uncertain-hint'),
        },
      );
      await journal.update(record.id, { state: 'uncertain', error: errorOf(err) });
      if (record.source?.kind === 'memory') await journal.dropSpool(record.id);
      throw err;
    }

    /** One delivery this node left unfinished (redeploy, restart, crash): sent again, settled or reported. */
    async function resume(
      journal: Journal,
      record: DeliveryRecord,
      client: M2MClient,
      signal: AbortSignal,
    ): Promise<void> {
      const msg: NodeMessage = { ...(record.msg ?? {}), resumed: true };
      const target = record.target as DeliveryTarget;
      try {
        if (record.state === 'closing') return await settleClosing(journal, record, msg, client);
        const content = await reload(journal, record, msg);
        if (typeof content === 'string') {
          const err = new ValidationError(
            RED._(`scb-m2m-upload.errors.${content}`, {
              filnamn: target.filnamn,
              target: describeTarget(target),
              path: record.source?.kind === 'path' ? record.source.path : RED._('scb-m2m-upload.journal.in-memory'),
            }),
            {
              code: content === 'source-gone' ? 'SOURCE_GONE' : 'SOURCE_CHANGED',
              field: 'filename',
            },
          );
          await journal.update(record.id, { state: 'failed', error: errorOf(err) });
          if (record.source?.kind === 'memory') await journal.dropSpool(record.id);
          throw err;
        }
        await journal.update(record.id, { state: 'queued', note: RED._('scb-m2m-upload.journal.resumed') });
        node.log(RED._('scb-m2m-upload.log.resumed', { filnamn: target.filnamn, target: describeTarget(target) }));
        await send(journal, record, content, msg, client, signal, (out) => node.send(out));
      } catch (err) {
        if (isInterruption(err, signal)) return;
        node.warn(
          RED._('scb-m2m-upload.warnings.not-resumed', {
            filnamn: target.filnamn,
            target: describeTarget(target),
            reason: errorOf(err).message,
          }),
        );
        node.error(flow.failed(msg, err), msg);
      }
    }

    const resumed = new AbortController();
    const resuming = new Set<Promise<void>>();
    node.on('close', (_removed: boolean, done: () => void) => {
      resumed.abort();
      // Their journal lines ("interrupted") are written before the next node reads them.
      void Promise.allSettled([...resuming]).then(() => done());
    });
    // After the flow has started (Catch nodes are wired only then): what this node left unfinished.
    setImmediate(() => {
      const config = flow.config;
      if (!config) return;
      void (async () => {
        const journal = await journalFor(RED, config.id);
        const mine = journal
          .list()
          .filter((r) => r.node?.id === node.id && r.target && RESUMABLE.includes(r.state) && !working.has(r.id));
        if (mine.length === 0) return;
        const client = await config.acquireClient();
        for (const record of mine.reverse()) {
          const task = resume(journal, record, client, resumed.signal);
          resuming.add(task);
          void task.finally(() => resuming.delete(task));
        }
      })().catch((err: unknown) => {
        if (!resumed.signal.aborted) node.error(flow.failed({}, err));
      });
    });
  }
  RED.nodes.registerType('scb-m2m-upload', ScbM2mUploadNode);
};
