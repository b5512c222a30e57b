/**
 * Part 1 again for one file, with the simulator, the Node-RED process and curl on the same two
 * cores: where Node-RED shares its cores with other work (here: the server), its CPU per byte is
 * what separates it from curl.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { withBenchFile } from './files';
import type { Options } from './options';
import { startSimulatorProcess, withWorker } from './runner';
import { prepareTarget } from './target';
import { type SizeResult, sideBySide } from './throughput';

export interface SharedCoresResult {
  /** The CPUs everything ran on, or undefined where it could not be pinned (`how` says why). */
  cpus?: string;
  how: string;
  size: SizeResult;
}

/** The first two CPUs this process may use, for taskset. */
function twoCores(): { cpus?: string; how: string } {
  if (spawnSync('taskset', ['--version']).status !== 0) {
    return { how: 'not pinned: taskset (util-linux) is not installed' };
  }
  const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  const cpus = allowed.split(',').flatMap((range) => {
    const [from, to = from] = range.split('-').map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
  if (cpus.length < 2) return { how: `not pinned: this process may use CPUs "${allowed}" only` };
  const pair = `${cpus[0]},${cpus[1]}`;
  return { cpus: pair, how: `simulator, Node-RED and curl pinned to CPUs ${pair} with taskset` };
}

export async function sharedCores(
  options: Options,
  work: string,
  log: (line: string) => void,
): Promise<SharedCoresResult> {
  const { cpus, how } = twoCores();
  log(`shared cores: ${how}`);
  const sim = await startSimulatorProcess(path.join(work, 'simulator-shared'), cpus);
  try {
    const target = await prepareTarget(sim, path.join(work, 'target-shared'));
    const size = await withBenchFile(work, options.sharedMiB, log, (bench) =>
      withWorker(
        target.settings,
        (worker, loaded) => sideBySide(worker, loaded, target, bench, options.sharedRepeats, log, cpus),
        cpus,
      ),
    );
    return { cpus, how, size };
  } finally {
    await sim.stop();
  }
}
