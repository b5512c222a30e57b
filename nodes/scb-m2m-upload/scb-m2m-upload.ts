/** scb-m2m-upload: sends one file to SCB and answers with its upload id. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ValidationError } from '../../lib';
import type { UploadRequest, UploadSource } from '../../lib/types';
import type { NodeAPI, NodeDef, Node, NodeMessage } from '../shared/red';
import { handleInput } from '../shared/flow-node';
import { logLine } from '../shared/log';

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

  /** What to send: a Buffer payload, else the file at msg.filename (streamed), else a string payload. */
  async function sourceOf(msg: NodeMessage): Promise<UploadSource> {
    if (Buffer.isBuffer(msg.payload)) return { buffer: msg.payload };
    const filename = fieldText(msg.filename, 'filename', 'msg.filename');
    if (filename !== undefined) {
      const file = path.resolve(RED.settings.fileWorkingDirectory ?? process.cwd(), filename);
      const stat = await fs.stat(file).catch(() => undefined);
      if (!stat || !stat.isFile()) {
        throw new ValidationError(RED._(`scb-m2m-upload.errors.${stat ? 'not-a-file' : 'file-not-found'}`, { filename: file }), {
          code: stat ? 'NOT_A_FILE' : 'FILE_NOT_FOUND',
          field: 'filename',
          value: file,
        });
      }
      return { path: file };
    }
    if (typeof msg.payload === 'string') return { buffer: Buffer.from(msg.payload, 'utf8') };
    throw new ValidationError(RED._('scb-m2m-upload.errors.no-file'), { code: 'NO_FILE', field: 'payload' });
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

    /** msg.<field>, else the node's property, else the config node's default. */
    async function fieldOf(field: Field, msg: NodeMessage, defaults: Record<string, string>): Promise<string | undefined> {
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

    handleInput(RED, node, def.config, async (msg, { config, client, signal, send }) => {
      const defaults: Record<string, string> = {};
      for (const field of CONFIG_DEFAULTS) defaults[field] = config[field];
      const values: Partial<Record<Field, string>> = {};
      for (const field of FIELDS) values[field] = await fieldOf(field, msg, defaults);
      for (const field of REQUIRED) {
        if (values[field] === undefined) {
          const where = (CONFIG_DEFAULTS as readonly string[]).includes(field) ? 'missing-with-default' : 'missing';
          throw new ValidationError(RED._(`scb-m2m-upload.errors.${where}`, { field }), { code: 'MISSING', field });
        }
      }
      const source = await sourceOf(msg);
      const request: UploadRequest = {
        organisationsnummer: values.organisationsnummer ?? '',
        undersokning: values.undersokning ?? '',
        referensperiod: values.referensperiod,
        filformat: values.filformat ?? '',
        version: values.version,
        filnamn: filnamnOf(msg),
        source,
      };
      node.status({ fill: 'blue', shape: 'ring', text: RED._('scb-m2m-upload.status.sending') });
      const result = await client.upload(request, {
        signal,
        onProgress: (p) => {
          node.debug(logLine.segment(request, p));
          if (p.segments > 1) {
            node.status({ fill: 'blue', shape: 'ring', text: RED._('scb-m2m-upload.status.segment', { segment: p.segment, segments: p.segments }) });
          }
        },
      });
      node.log(logLine.uploaded(request, result));
      msg.uploadId = result.uploadId;
      msg.statusCode = result.statusCode;
      msg.payload = result.body;
      const id = result.uploadId.length > SHORT_ID ? `${result.uploadId.slice(0, SHORT_ID)}…` : result.uploadId;
      node.status({ fill: 'green', shape: 'dot', text: RED._('scb-m2m-upload.status.sent', { id }) });
      send(msg);
    });
  }
  RED.nodes.registerType('scb-m2m-upload', ScbM2mUploadNode as (this: never, def: never) => void);
};
