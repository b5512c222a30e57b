/**
 * What the delivery journal costs, side by side in one run:
 * - small uploads through the client alone, and through the client with the journal work the
 *   upload node does for each (hash, duplicate check, record, spool, every state, spool dropped),
 *   interleaved in rounds so that the machine's noise falls on both alike;
 * - the SHA-256 pass over a file, as a share of uploading that file: what the duplicate guard adds
 *   when an earlier delivery to the same target has the file's size (else the upload node hashes
 *   the bytes as it sends them, which the throughput figures include);
 * - Node-RED's peak RSS growth while the history node moves a large accepted file to another
 *   file system (a streamed copy), in a Node-RED process of its own (bench/move-worker.ts).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { M2MClient } from '../lib';
import { DuplicateGuard, openJournal, sha256File, sha256Of, type DeliveryTarget } from '../lib/journal';
import { runNode } from '../scripts/process';
import { startSimulator } from '../simulator';
import { MiB, fixed } from './format';
import { REPORTER, type Options } from './options';

export interface JournalResult {
  uploads: number;
  plainMsPerUpload: number;
  journalMsPerUpload: number;
  /** journal / plain - 1. */
  overhead: number;
  hash: { bytes: number; seconds: number; uploadSeconds: number; share: number };
  move: { bytes: number; ms: number; peakGrowthMiB: number; crossDevice: boolean };
}

const ROUNDS = 4;

/** Work around one upload: what runs before it, returning what runs after it. */
type AroundUpload = (i: number, content: Buffer) => Promise<() => Promise<void>>;

async function timedUploads(client: M2MClient, count: number, withJournal: AroundUpload, prefix: string) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const content = Buffer.from(`<bench n="${prefix}-${i}">${'x'.repeat(1000)}</bench>`);
    const finish = await withJournal(i, content);
    await client.upload({ ...REPORTER, filnamn: `${prefix}-${i}.xml`, source: { buffer: content } });
    await finish();
  }
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/** The journal work of one upload, as the upload node does it, around the client's upload. */
async function journalSteps(dir: string, count: number, client: M2MClient, prefix: string): Promise<number> {
  const journal = await openJournal(dir, 'bench-cfg');
  return timedUploads(
    client,
    count,
    async (i, content) => {
      const target: DeliveryTarget = { ...REPORTER, filnamn: `${prefix}-${i}.xml` };
      const sha256 = sha256Of(content);
      const guard = new DuplicateGuard([journal], client.apiRoot, target, { size: content.length, sha256 });
      const record = await guard.run(({ earlier }) => {
        if (earlier) throw new Error('unexpected duplicate');
        return journal.create({
          target,
          server: client.apiRoot,
          source: { kind: 'memory', encoding: 'buffer' },
          size: content.length,
          sha256,
          msg: { _msgid: `${prefix}-${i}` },
          node: { id: 'up', type: 'scb-m2m-upload' },
        });
      });
      await journal.spool(record.id, content);
      await journal.update(record.id, { state: 'sending', segment: 1, segments: 1 });
      await journal.update(record.id, { state: 'closing' });
      return async () => {
        await journal.update(record.id, { state: 'sent', uploadId: `u-${i}` });
        await journal.dropSpool(record.id);
      };
    },
    prefix,
  );
}

async function journalCost(work: string, total: number, log: (line: string) => void) {
  const sim = await startSimulator({ keepFiles: false, dir: path.join(work, 'journal-sim') });
  const { path: certPath, passphrase } = sim.certificates.valid;
  const client = await M2MClient.create({
    environment: 'custom',
    baseUrl: sim.url,
    certificate: { path: certPath, passphrase },
    ca: await fs.readFile(sim.caPath),
  });
  const dir = path.join(work, 'journal');
  try {
    await timedUploads(client, 20, async () => async () => undefined, 'warm');
    let plain = 0;
    let journalled = 0;
    const perRound = Math.ceil(total / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      plain += await timedUploads(client, perRound, async () => async () => undefined, `plain${round}`);
      journalled += await journalSteps(dir, perRound, client, `journal${round}`);
    }
    const uploads = perRound * ROUNDS;
    log(`journal: ${uploads} small uploads each way`);
    return {
      uploads,
      plainMsPerUpload: plain / uploads,
      journalMsPerUpload: journalled / uploads,
      overhead: journalled / plain - 1,
    };
  } finally {
    await client.close();
    await sim.stop();
  }
}

async function writeFile(file: string, bytes: number): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    const chunk = Buffer.alloc(8 * MiB, '<v>0123456789</v>');
    for (let written = 0; written < bytes; written += chunk.length) {
      await handle.write(chunk, 0, Math.min(chunk.length, bytes - written));
    }
  } finally {
    await handle.close();
  }
}

/** A folder on another file system than `work`, where there is one (tmpfs): the move is then a copy. */
async function otherDevice(work: string): Promise<string> {
  const shm = '/dev/shm';
  try {
    const [a, b] = await Promise.all([fs.stat(work), fs.stat(shm)]);
    if (a.dev !== b.dev) return fs.mkdtemp(path.join(shm, 'scb-m2m-bench-'));
  } catch {
    // no /dev/shm: the same device, a rename
  }
  return fs.mkdtemp(path.join(os.tmpdir(), 'scb-m2m-bench-src-'));
}

interface Moved {
  ms: number;
  peakGrowthMiB: number;
  movedTo: string;
}

async function moveInWorker(file: string, doneDir: string, journalDir: string): Promise<Moved> {
  const run = runNode(path.join(__dirname, 'move-worker.js'), [file, doneDir, journalDir], { ipc: true });
  let moved: Moved | undefined;
  run.child.once('message', (m) => (moved = m as Moved));
  const code = await run.exited;
  if (code !== 0 || !moved) throw new Error(`move worker exited with ${code} without its figures:\n${run.output()}`);
  return moved;
}

export async function journalFigures(
  options: Pick<Options, 'quick' | 'sizesMiB' | 'inRow'>,
  uploadMsBySize: Map<number, number>,
  work: string,
  log: (line: string) => void,
): Promise<JournalResult> {
  const cost = await journalCost(work, options.inRow, log);

  // The hash pass over the largest file uploaded, against that upload's median time.
  const largest = Math.max(...options.sizesMiB);
  const hashFile = path.join(work, 'hash.bin');
  await writeFile(hashFile, largest * MiB);
  const started = process.hrtime.bigint();
  await sha256File(hashFile);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await fs.rm(hashFile);
  const uploadSeconds = (uploadMsBySize.get(largest) ?? NaN) / 1000;
  log(`journal: SHA-256 of ${largest} MiB in ${fixed(seconds, 2)} s`);

  const moveBytes = (options.quick ? 256 : 1024) * MiB;
  const source = await otherDevice(work);
  const file = path.join(source, 'accepted.xml');
  const doneDir = path.join(work, 'done');
  try {
    await writeFile(file, moveBytes);
    const crossDevice = (await fs.stat(source)).dev !== (await fs.stat(work)).dev;
    const moved = await moveInWorker(file, doneDir, path.join(work, 'move-journal'));
    const size = (await fs.stat(moved.movedTo)).size;
    if (size !== moveBytes) throw new Error(`moved ${size} bytes, expected ${moveBytes}`);
    log(`journal: moved ${moveBytes / MiB} MiB in ${fixed(moved.ms, 0)} ms`);
    return {
      ...cost,
      hash: { bytes: largest * MiB, seconds, uploadSeconds, share: seconds / uploadSeconds },
      move: { bytes: moveBytes, ms: moved.ms, peakGrowthMiB: moved.peakGrowthMiB, crossDevice },
    };
  } finally {
    await fs.rm(source, { recursive: true, force: true });
    await fs.rm(doneDir, { recursive: true, force: true });
  }
}

export function journalRows(j: JournalResult): string[][] {
  return [
    [
      `${j.uploads} small uploads, client alone vs with the journal's work`,
      `${fixed(j.plainMsPerUpload, 2)} vs ${fixed(j.journalMsPerUpload, 2)} ms per upload: ` +
        `the journal costs ${fixed(j.overhead * 100)} %`,
    ],
    [
      `SHA-256 pass over ${j.hash.bytes / MiB} MiB (duplicate guard, when an earlier delivery has the size)`,
      `${fixed(j.hash.seconds, 2)} s, ${fixed(j.hash.share * 100)} % of uploading it (${fixed(j.hash.uploadSeconds, 2)} s)`,
    ],
    [
      `history node moves a ${j.move.bytes / MiB} MiB accepted file${j.move.crossDevice ? ' to another file system' : ''}`,
      `${fixed(j.move.ms, 0)} ms; Node-RED peak RSS growth ${fixed(j.move.peakGrowthMiB)} MiB`,
    ],
  ];
}
