/**
 * What the simulator keeps in its directory across restarts, as SCB keeps its history: the
 * certificates and the port of the last run (`state.json`) and every delivery with its history
 * (`history.jsonl`, one line per delivery or settleHistory call). A client configured against
 * the simulator keeps working after a restart, and an uploadId it was given still answers.
 */
import { appendFileSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { DeliveryLine } from './history';
import { generatePki, type GeneratedPki } from './pki';
import type { SimulatorClientSpec } from './types';

interface StoredPki extends Omit<GeneratedPki, 'clients' | 'revokedSerials'> {
  clients: Array<{ spec: GeneratedPki['clients'][number]['spec']; pfx: string; serialNumber: string }>;
  revokedSerials: string[];
}

interface StoredState {
  /** The port of the last run, tried first when the caller asks for none. */
  port?: number;
  /** The client specs the certificates were made for: others make new ones. */
  specs?: SimulatorClientSpec[];
  pki?: StoredPki;
}

export class SimulatorState {
  private constructor(
    private readonly file: string,
    private readonly historyFile: string,
    private stored: StoredState,
  ) {}

  static async open(dir: string): Promise<SimulatorState> {
    const file = path.join(dir, 'state.json');
    let stored: StoredState = {};
    try {
      stored = JSON.parse(await fsp.readFile(file, 'utf8')) as StoredState;
    } catch (err) {
      // None yet, or unreadable (a run killed while writing it): start afresh.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
    }
    return new SimulatorState(file, path.join(dir, 'history.jsonl'), stored);
  }

  get port(): number | undefined {
    return this.stored.port;
  }

  /** The certificates of the last run when they were made for the same specs and still behave as made; new ones otherwise. */
  async pki(specs: SimulatorClientSpec[]): Promise<GeneratedPki> {
    const kept = this.stored.pki;
    if (kept && JSON.stringify(this.stored.specs) === JSON.stringify(specs) && Date.now() < kept.renewAfter) {
      return {
        ...kept,
        clients: kept.clients.map((c) => ({ ...c, pfx: Buffer.from(c.pfx, 'base64') })),
        revokedSerials: new Set(kept.revokedSerials),
      };
    }
    const made = await generatePki(specs);
    this.stored = {
      ...this.stored,
      specs,
      pki: {
        ...made,
        clients: made.clients.map((c) => ({ ...c, pfx: c.pfx.toString('base64') })),
        revokedSerials: [...made.revokedSerials],
      },
    };
    return made;
  }

  /** Remembers the port and certificates; the file holds private keys, so only its owner reads it. */
  async save(port: number): Promise<void> {
    this.stored.port = port;
    const temp = `${this.file}.tmp`;
    await fsp.writeFile(temp, JSON.stringify(this.stored), { mode: 0o600 });
    await fsp.rename(temp, this.file);
  }

  /** The history lines of earlier runs; a line torn by a crash is skipped. */
  async history(): Promise<DeliveryLine[]> {
    let text: string;
    try {
      text = await fsp.readFile(this.historyFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return text.split('\n').flatMap((line) => {
      try {
        return line.trim() ? [JSON.parse(line) as DeliveryLine] : [];
      } catch {
        return [];
      }
    });
  }

  /** Appended before the upload is answered, so a delivery the client was told about survives a crash. */
  appendHistory(line: DeliveryLine): void {
    appendFileSync(this.historyFile, `${JSON.stringify(line)}\n`);
  }
}
