/**
 * `npm run bench`: throughput, CPU per byte and memory of the upload node against curl and
 * Node-RED's core `http request` node (also with everything on the same two cores), what many
 * sequential, concurrent and polled uploads cost, and what the delivery journal costs.
 * It prints figures (tables, a Markdown table for the README, a JSON block); it asserts nothing.
 *
 *   node bench/run.js [--quick] [--sizes 64,256,1024]
 *
 * Part 1 (throughput.ts, shared-cores.ts) runs the simulator's CLI in a child process and Node-RED in
 * another (nr-worker.ts), so each measures only itself; part 2 (counts.ts) runs the simulator in this
 * process to read its counters; part 3 is journal.ts. runner.ts starts and ends the processes.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { counts } from './counts';
import { MiB, fixed, median } from './format';
import { journalFigures } from './journal';
import { parseOptions } from './options';
import { report } from './report';
import { sharedCores } from './shared-cores';
import { throughput } from './throughput';

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-m2m-bench-'));
  const log = (line: string) => process.stderr.write(`[bench ${fixed((Date.now() - started) / 1000, 0)} s] ${line}\n`);
  process.env.SCB_M2M_BENCH_JOURNAL = path.join(work, 'nr-journal');
  try {
    log(`sizes ${options.sizesMiB.join(', ')} MiB${options.quick ? ' (quick)' : ''}; work dir ${work}`);
    const part1 = await throughput(options, work, log);
    const shared = await sharedCores(options, work, log);
    const part2 = await counts(options, work, log);
    const uploadMs = new Map(part1.sizes.map((s) => [s.bytes / MiB, median(s.oursMs)]));
    const part3 = await journalFigures(options, uploadMs, work, log);
    report(options, { part1, shared, part2, part3 }, started);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
