/**
 * The delivery journal seen from the admin API, `GET /scb-m2m/deliveries`: every delivery and
 * its fate, as JSON (newest first) or as a CSV download, for the editor's sidebar, an auditor or
 * a script. Read permission only; nothing secret is in a record.
 */
import { promises as fs } from 'node:fs';
import {
  DELIVERY_STATES,
  isJournalId,
  openJournals,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryState,
} from '../../lib/journal';
import type { ErrorCode } from '../../lib/errors';
import type { AdminRequest, AdminResponse, NodeAPI } from '../shared/red';
import { journalDir, journalFor } from '../shared/journal';

export const DELIVERIES_PATH = '/scb-m2m/deliveries';
export const DELIVERIES_PERMISSION = 'scb-m2m-deliveries.read';
const MAX_LIMIT = 100_000;

const CSV_COLUMNS: Array<[string, (r: DeliveryRecord) => unknown]> = [
  ['createdAt', (r) => r.createdAt],
  ['updatedAt', (r) => r.updatedAt],
  ['state', (r) => r.state],
  ['filnamn', (r) => r.target?.filnamn],
  ['organisationsnummer', (r) => r.target?.organisationsnummer],
  ['undersokning', (r) => r.target?.undersokning],
  ['referensperiod', (r) => r.target?.referensperiod],
  ['filformat', (r) => r.target?.filformat],
  ['version', (r) => r.target?.version],
  ['size', (r) => r.size],
  ['sha256', (r) => r.sha256],
  ['uploadId', (r) => r.uploadId],
  ['timeStamp', (r) => r.timeStamp],
  ['scbStatus', (r) => r.decision?.status],
  ['scbMessages', (r) => r.decision?.messages.join(' | ')],
  ['errorCode', (r) => r.error?.code],
  ['errorMessage', (r) => r.error?.message],
  ['environment', (r) => r.environment],
  ['server', (r) => r.server],
  ['source', (r) => (r.source?.kind === 'path' ? r.source.path : r.source?.kind)],
  ['node', (r) => r.node?.name || r.node?.id],
  ['configId', (r) => r.configId],
  ['id', (r) => r.id],
];

/** One CSV field; a leading = + - @ is defused so a spreadsheet never runs it as a formula. */
function csvField(value: unknown): string {
  if (value === undefined || value === null) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(records: DeliveryRecord[]): string {
  const lines = [CSV_COLUMNS.map(([name]) => name).join(',')];
  for (const r of records) lines.push(CSV_COLUMNS.map(([, get]) => csvField(get(r))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** The query's filters, or the text of what is wrong with them (naming the parameter and the fix). */
export function parseQuery(
  query: Record<string, unknown>,
): { configId?: string; filter: DeliveryQuery; csv: boolean } | string {
  const one = (name: string) =>
    typeof query[name] === 'string' && (query[name] as string).trim() !== ''
      ? (query[name] as string).trim()
      : undefined;
  const configId = one('config');
  if (configId !== undefined && !isJournalId(configId)) return 'config must be the id of an scb-m2m-config node.';
  const filter: DeliveryQuery = {};
  const state = one('state');
  if (state !== undefined) {
    const states = state.split(',').map((s) => s.trim());
    const unknown = states.filter((s) => !DELIVERY_STATES.includes(s as DeliveryState));
    if (unknown.length > 0)
      return `state ${unknown.join(', ')} is not known: use one or more of ${DELIVERY_STATES.join(', ')}, separated by commas.`;
    filter.state = states as DeliveryState[];
  }
  const since = one('since');
  if (since !== undefined) {
    const at = new Date(since);
    if (Number.isNaN(at.getTime()))
      return `since ${JSON.stringify(since)} is not a time: give an ISO 8601 date, e.g. 2026-10-01 or 2026-10-01T08:00:00Z.`;
    filter.since = at;
  }
  const limit = one('limit');
  if (limit !== undefined) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
      return `limit ${JSON.stringify(limit)} must be a whole number from 1 to ${MAX_LIMIT}.`;
    filter.limit = n;
  }
  const format = one('format');
  if (format !== undefined && format !== 'json' && format !== 'csv')
    return `format ${JSON.stringify(format)} is not known: use json or csv.`;
  return { configId, filter, csv: format === 'csv' };
}

/** Every journal in the journal folder (also of config nodes not deployed now), and those open in this process. */
async function allJournals(RED: NodeAPI) {
  const files = await fs.readdir(journalDir(RED)).catch(() => [] as string[]);
  const ids = files
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => f.slice(0, -'.jsonl'.length))
    .filter(isJournalId);
  const opened = await Promise.all(ids.map((id) => journalFor(RED, id)));
  return [...new Set([...opened, ...(await openJournals(journalDir(RED)))])];
}

export async function listDeliveries(
  RED: NodeAPI,
  configId: string | undefined,
  filter: DeliveryQuery,
): Promise<DeliveryRecord[]> {
  const journals = configId !== undefined ? [await journalFor(RED, configId)] : await allJournals(RED);
  const all = journals
    .flatMap((j) => j.list({ ...filter, limit: undefined }))
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  return filter.limit !== undefined ? all.slice(0, filter.limit) : all;
}

export function registerDeliveriesRoute(RED: NodeAPI): void {
  RED.httpAdmin.get(
    DELIVERIES_PATH,
    RED.auth.needsPermission(DELIVERIES_PERMISSION),
    (req: AdminRequest, res: AdminResponse) => {
      const parsed = parseQuery(req.query ?? {});
      if (typeof parsed === 'string') {
        res.status(400).json({ ok: false, error: { code: 'INVALID_QUERY' satisfies ErrorCode, message: parsed } });
        return;
      }
      listDeliveries(RED, parsed.configId, parsed.filter).then(
        (records) => {
          if (!parsed.csv) {
            res.json(records);
            return;
          }
          const day = new Date().toISOString().slice(0, 10);
          res.set('Content-Type', 'text/csv; charset=utf-8');
          res.set('Content-Disposition', `attachment; filename="scb-deliveries-${day}.csv"`);
          res.send(toCsv(records));
        },
        (err: unknown) =>
          res.status(500).json({
            ok: false,
            error: {
              code: 'JOURNAL_UNREADABLE' satisfies ErrorCode,
              message: err instanceof Error ? err.message : String(err),
            },
          }),
      );
    },
  );
}
