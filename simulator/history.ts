/**
 * Finished deliveries and their history records, in one of the ASSUMED shapes of the API
 * description (historyShape). A delivery is unknown to history for unknownForMs after it
 * arrived, pending until historyDelayMs after it arrived, then decided by its content check;
 * decided lazily on read, so no timers pile up.
 */
import { randomUUID } from 'node:crypto';
import { PROGRESS_STATUS, type HistoryRecord, type ScbStatus } from '../lib/api';
import type { SimulatorDelivery, SimulatorHistoryShape } from './types';

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function localDate(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Local time with its UTC offset, as an ASP.NET DateTime serialises: `2026-11-24T10:46:44.123+01:00`. */
export function localIso(d = new Date()): string {
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${localDate(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** Whose history a certificate may read. */
export interface HistoryReader {
  organisationsnummer: string;
  undersokningar: string[];
}

interface Stored {
  delivery: Omit<SimulatorDelivery, 'status'>;
  receivedMs: number;
  /** Why the content check rejects it; empty: accepted. */
  meddelanden: string[];
  settled: boolean;
  /** History knows it (settle() makes it known before unknownForMs has passed). */
  known: boolean;
  /** The Rapporthuvud shape's own ids of the head and its two rows (the delivery's id is its LatestInskickningsId). */
  ids: [head: string, received: string, decided: string];
}

export interface HistoryOptions {
  delayMs: number;
  /** How long history answers as if it did not know a delivery yet. */
  unknownForMs: number;
  shape: SimulatorHistoryShape;
}

const STATUS_TEXT: Record<ScbStatus, string> = { pending: 'Pågår', accepted: 'Godkänd', rejected: 'Fel' };
const PROGRESS: Record<ScbStatus, number> = {
  pending: PROGRESS_STATUS.inProgress,
  accepted: PROGRESS_STATUS.finishedOk,
  rejected: PROGRESS_STATUS.finishedWithErrors,
};

/** What the store hands to `persist`, and takes back in `restore` after a restart: a delivery, or a settleHistory() call. */
export type DeliveryLine =
  { delivery: Omit<SimulatorDelivery, 'status'>; meddelanden: string[] } | { settledAt: number };

export class DeliveryStore {
  private readonly stored = new Map<string, Stored>();

  constructor(
    private readonly options: HistoryOptions,
    private readonly persist: (line: DeliveryLine) => void = () => undefined,
  ) {}

  /** Replays what an earlier run persisted, as SCB keeps history across its restarts. */
  restore(lines: DeliveryLine[]): void {
    for (const line of lines) {
      if ('settledAt' in line) {
        for (const s of this.stored.values()) if (s.receivedMs <= line.settledAt) s.settled = s.known = true;
      } else this.put(line.delivery, line.meddelanden);
    }
  }

  add(delivery: Omit<SimulatorDelivery, 'status'>, meddelanden: string[]): void {
    this.put(delivery, meddelanden);
    this.persist({ delivery, meddelanden });
  }

  private put(delivery: Omit<SimulatorDelivery, 'status'>, meddelanden: string[]): void {
    this.stored.set(delivery.deliveryId, {
      delivery,
      receivedMs: Date.parse(delivery.receivedAt),
      meddelanden,
      settled: false,
      known: false,
      ids: [randomUUID(), randomUUID(), randomUUID()],
    });
  }

  list(): SimulatorDelivery[] {
    return [...this.stored.values()].map((s) => ({ ...s.delivery, status: this.status(s) }));
  }

  settle(): void {
    for (const s of this.stored.values()) s.settled = s.known = true;
    this.persist({ settledAt: Date.now() });
  }

  /** The record of `id` if `reader` may see it and history knows it yet. */
  record(id: string, reader: HistoryReader): object | undefined {
    const s = this.stored.get(id);
    return s && this.visible(s, reader) ? this.toRecord(s) : undefined;
  }

  records(reader: HistoryReader): object[] {
    return [...this.stored.values()].filter((s) => this.visible(s, reader)).map((s) => this.toRecord(s));
  }

  private visible(s: Stored, reader: HistoryReader): boolean {
    const survey = s.delivery.undersokning.toUpperCase();
    if (!s.known && Date.now() - s.receivedMs < this.options.unknownForMs) return false;
    return (
      s.delivery.organisationsnummer === reader.organisationsnummer &&
      reader.undersokningar.some((u) => u.toUpperCase() === survey)
    );
  }

  private status(s: Stored): ScbStatus {
    if (!s.settled && Date.now() - s.receivedMs >= this.options.delayMs) s.settled = true;
    if (!s.settled) return 'pending';
    return s.meddelanden.length > 0 ? 'rejected' : 'accepted';
  }

  private toRecord(s: Stored): object {
    const status = this.status(s);
    const record = camelRecord(s, status);
    if (this.options.shape === 'pascal') return pascalCase(record);
    if (this.options.shape === 'rapporthuvud') return rapporthuvud(s, status, record);
    return record;
  }
}

const RECEIVED_MESSAGE = 'Filen är mottagen.';

function camelRecord(s: Stored, status: ScbStatus): HistoryRecord {
  const d = s.delivery;
  const meddelanden =
    status === 'pending'
      ? ['Filen är mottagen och kontrolleras.']
      : status === 'accepted'
        ? ['Filen är godkänd.']
        : s.meddelanden;
  return {
    id: d.deliveryId,
    organisationsnummer: d.organisationsnummer,
    undersokning: d.undersokning,
    filformat: d.filformat,
    ...(d.referensperiod ? { referensperiod: d.referensperiod } : {}),
    ...(d.version ? { version: d.version } : {}),
    filnamn: d.filnamn,
    inskickatDatum: minuteText(new Date(s.receivedMs)),
    status: STATUS_TEXT[status],
    progressStatus: PROGRESS[status],
    meddelanden,
  };
}

/** `yyyy-MM-dd HH:mm`, local time, as SCB's portal shows it. */
function minuteText(d: Date): string {
  return `${localDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The same record with .NET's default property names: `Id`, `Status`, `ProgressStatus`, `Meddelanden`. */
function pascalCase(record: HistoryRecord): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k[0].toUpperCase() + k.slice(1), v]));
}

/**
 * The shape of the unused model class `Rapporthuvud` in SCB's client (assumed to be what
 * history might send): a head that carries no messages, and rows with their own status,
 * progress and messages: "received", then, once decided, the check with its outcome.
 */
function rapporthuvud(s: Stored, status: ScbStatus, record: HistoryRecord): Record<string, unknown> {
  const d = s.delivery;
  const [headId, receivedId, decidedId] = s.ids;
  const row = (id: string, rowStatus: ScbStatus, text: string, meddelanden: string[]) => ({
    Id: id,
    ParentId: headId,
    UppgiftslamnareNamn: '',
    UndersokningNamn: '',
    BlankettNamn: '',
    Referensperiod: '',
    InskickatDatum: record.inskickatDatum,
    Status: text,
    ProgressStatus: PROGRESS[rowStatus],
    HasChildren: false,
    IsExpanded: false,
    Meddelanden: meddelanden,
  });
  const rows = [row(receivedId, 'accepted', 'Mottagen', [RECEIVED_MESSAGE])];
  if (status !== 'pending') rows.push(row(decidedId, status, STATUS_TEXT[status], record.meddelanden ?? []));
  return {
    Id: headId,
    UppgiftslamnareNamn: d.organisationsnummer,
    UndersokningNamn: d.undersokning,
    BlankettNamn: d.filformat,
    Referensperiod: d.referensperiod ?? '',
    InskickatDatum: record.inskickatDatum,
    Status: STATUS_TEXT[status],
    ProgressStatus: PROGRESS[status],
    HasChildren: true,
    IsExpanded: false,
    Rapportrader: rows,
    LatestInskickningsId: d.deliveryId,
  };
}
