/**
 * A Node-RED runtime of its own (node-red-node-test-helper, our real nodes) in which the history
 * node moves one accepted file: argv = the file, the folder to move it to, the journal folder.
 * Reports to its parent the move's time and the process's peak RSS growth while it ran.
 */
import * as path from 'node:path';
import { startSimulator } from '../simulator';
import { testRuntime } from './test-runtime';

const SAMPLE_MS = 20;

async function main(): Promise<void> {
  const [file, doneDir, journalDir] = process.argv.slice(2);
  const { helper, scbModules: modules } = testRuntime({ scbM2mJournalDir: journalDir });
  const sim = await startSimulator({ keepFiles: false, historyDelayMs: 0, dir: path.join(journalDir, 'sim') });
  try {
    await helper.load(
      modules,
      [
        { id: 'tab', type: 'tab' },
        {
          id: 'cfg',
          type: 'scb-m2m-config',
          environment: 'custom',
          baseUrl: sim.url,
          apiVersion: 'v2',
          certPath: sim.certificates.valid.path,
          caPath: sim.caPath,
          organisationsnummer: '9990000045',
          undersokning: 'VINN',
        },
        {
          id: 'up',
          type: 'scb-m2m-upload',
          z: 'tab',
          config: 'cfg',
          referensperiod: '2024-01-31',
          referensperiodType: 'str',
          filformat: 'V40',
          filformatType: 'str',
          wires: [['sent']],
        },
        { id: 'sent', type: 'helper', z: 'tab' },
        {
          id: 'hist',
          type: 'scb-m2m-history',
          z: 'tab',
          config: 'cfg',
          mode: 'once',
          acceptedDir: doneDir,
          acceptedDirType: 'str',
          wires: [['accepted'], ['other'], ['other']],
        },
        { id: 'accepted', type: 'helper', z: 'tab' },
        { id: 'other', type: 'helper', z: 'tab' },
      ],
      { cfg: { passphrase: sim.certificates.valid.passphrase } },
    );
    const node = (id: string) => {
      const found = helper.getNode(id);
      if (!found) throw new Error(`no node ${id} in the flow`);
      return found;
    };
    // A small upload gives an uploadId that SCB accepts; the large file is what the history node moves.
    const sent = new Promise<Record<string, unknown>>((resolve) => node('sent').on('input', resolve));
    node('up').receive({ payload: Buffer.from('<v/>'), filnamn: 'accepted.xml' });
    const { uploadId } = await sent;
    const moved = new Promise<Record<string, unknown>>((resolve, reject) => {
      node('accepted').on('input', resolve);
      node('other').on('input', () => reject(new Error('not accepted')));
    });
    global.gc?.();
    const base = process.memoryUsage.rss();
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), SAMPLE_MS);
    const started = process.hrtime.bigint();
    node('hist').receive({ uploadId, filename: file });
    const msg = await moved;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage.rss());
    process.send?.({ ms, peakGrowthMiB: (peak - base) / (1024 * 1024), movedTo: msg.filename });
    await helper.unload();
  } finally {
    await sim.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`move worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
