/**
 * Finished deliveries and their history records, in the ASSUMED shape of the API
 * description. A delivery is pending until historyDelayMs after it arrived, then decided
 * by its content check; decided lazily on read, so no timers pile up.
 */
import { PROGRESS_STATUS, type HistoryRecord, type ScbStatus } from '../lib/api';
import type { SimulatorDelivery } from './types';

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
}

const STATUS_TEXT: Record<ScbStatus, string> = { pending: 'Pågår', accepted: 'Godkänd', rejected: 'Fel' };
const PROGRESS: Record<ScbStatus, number> = {
  pending: PROGRESS_STATUS.inProgress,
  accepted: PROGRESS_STATUS.finishedOk,
  rejected: PROGRESS_STATUS.finishedWithErrors,
};

/** What the store hands to `persist`, and takes back in `restore` after a restart: a delivery, or a settleHistory() call. */
export type DeliveryLine = { delivery: Omit<SimulatorDelivery, 'status'>; meddelanden: string[] } | { settledAt: number };

export class DeliveryStore {
  private readonly stored = new Map<string, Stored>();

  constructor(
    private readonly delayMs: number,
    private readonly persist: (line: DeliveryLine) => void = () => undefined,
  ) {}

  /** Replays what an earlier run persisted, as SCB keeps history across its restarts. */
  restore(lines: DeliveryLine[]): void {
    for (const line of lines) {
      if ('settledAt' in line) {
        for (const s of this.stored.values()) if (s.receivedMs <= line.settledAt) s.settled = true;
      } else this.put(line.delivery, line.meddelanden);
    }
  }

  add(delivery: Omit<SimulatorDelivery, 'status'>, meddelanden: string[]): void {
    this.put(delivery, meddelanden);
    this.persist({ delivery, meddelanden });
  }

  private put(delivery: Omit<SimulatorDelivery, 'status'>, meddelanden: string[]): void {
    this.stored.set(delivery.deliveryId, { delivery, receivedMs: Date.parse(delivery.receivedAt), meddelanden, settled: false });
  }

  list(): SimulatorDelivery[] {
    return [...this.stored.values()].map((s) => ({ ...s.delivery, status: this.status(s) }));
  }

  settle(): void {
    for (const s of this.stored.values()) s.settled = true;
    this.persist({ settledAt: Date.now() });
  }

  /** The record of `id` if `reader` may see it. */
  record(id: string, reader: HistoryReader): HistoryRecord | undefined {
    const s = this.stored.get(id);
    return s && this.visible(s, reader) ? this.toRecord(s) : undefined;
  }

  records(reader: HistoryReader): HistoryRecord[] {
    return [...this.stored.values()].filter((s) => this.visible(s, reader)).map((s) => this.toRecord(s));
  }

  private visible(s: Stored, reader: HistoryReader): boolean {
    const survey = s.delivery.undersokning.toUpperCase();
    return s.delivery.organisationsnummer === reader.organisationsnummer && reader.undersokningar.some((u) => u.toUpperCase() === survey);
  }

  private status(s: Stored): ScbStatus {
    if (!s.settled && Date.now() - s.receivedMs >= this.delayMs) s.settled = true;
    if (!s.settled) return 'pending';
    return s.meddelanden.length > 0 ? 'rejected' : 'accepted';
  }

  private toRecord(s: Stored): HistoryRecord {
    const status = this.status(s);
    const d = s.delivery;
    const received = new Date(s.receivedMs);
    const meddelanden =
      status === 'pending' ? ['Filen är mottagen och kontrolleras.'] : status === 'accepted' ? ['Filen är godkänd.'] : s.meddelanden;
    return {
      id: d.deliveryId,
      organisationsnummer: d.organisationsnummer,
      undersokning: d.undersokning,
      filformat: d.filformat,
      ...(d.referensperiod ? { referensperiod: d.referensperiod } : {}),
      ...(d.version ? { version: d.version } : {}),
      filnamn: d.filnamn,
      inskickatDatum: `${localDate(received)} ${pad(received.getHours())}:${pad(received.getMinutes())}`,
      status: STATUS_TEXT[status],
      progressStatus: PROGRESS[status],
      meddelanden,
    };
  }
}
