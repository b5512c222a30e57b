/** Prints the benchmark's figures: tables, a Markdown table for the README, a JSON block. */
import * as os from 'node:os';
import type { CountsResult } from './counts';
import { fixed, markdownTable, median, runsMs, sizeLabel, textTable } from './format';
import { journalRows, type JournalResult } from './journal';
import type { Options } from './options';
import type { SharedCoresResult } from './shared-cores';
import type { CoreResult, SizeResult } from './throughput';

export interface Results {
  part1: { sizes: SizeResult[]; core: CoreResult };
  shared: SharedCoresResult;
  part2: CountsResult;
  part3: JournalResult;
}

function machine() {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

function sizeTable(sizes: SizeResult[]): string {
  return textTable(
    [
      'file',
      'segments',
      'upload node MB/s',
      'curl MB/s',
      'ours/curl',
      'CPU s/GiB ours',
      'curl',
      'ours/curl',
      'client alone MB/s',
      '/curl',
      'CPU s/GiB',
      '/curl',
      'node - client s/GiB',
      'SHA-256 alone',
      'NR peak RSS growth',
      'per upload',
      'ours ms (runs)',
      'curl ms (runs)',
    ],
    sizes.map((s) => [
      sizeLabel(s.bytes),
      String(s.segments),
      fixed(s.oursMBps),
      fixed(s.curlMBps),
      fixed(s.ratio, 2),
      fixed(s.oursCpuPerGiB, 2),
      fixed(s.curlCpuPerGiB, 2),
      fixed(s.cpuRatio, 2),
      fixed(s.client.mbps),
      fixed(s.client.ratio, 2),
      fixed(s.client.cpuPerGiB, 2),
      fixed(s.client.cpuRatio, 2),
      fixed(s.oursCpuPerGiB - s.client.cpuPerGiB, 2),
      fixed(s.sha256CpuPerGiB, 2),
      `${fixed(s.peakGrowthMiB)} MiB`,
      `${fixed(s.perUploadGrowthMiB)} MiB`,
      runsMs(s.oursMs),
      runsMs(s.curlMs),
    ]),
  );
}

/** One file's figures, ours next to curl's, for the README. */
function sizeFigures(s: SizeResult): string {
  return (
    `${fixed(s.oursMBps)} MB/s; curl ${fixed(s.curlMBps)} MB/s (ratio ${fixed(s.ratio, 2)}); ` +
    `CPU ${fixed(s.oursCpuPerGiB, 2)} s/GiB, curl ${fixed(s.curlCpuPerGiB, 2)} (${fixed(s.cpuRatio, 2)}×); ` +
    `client alone ${fixed(s.client.mbps)} MB/s (${fixed(s.client.ratio, 2)}), ` +
    `${fixed(s.client.cpuPerGiB, 2)} s/GiB (${fixed(s.client.cpuRatio, 2)}×); ` +
    `the journal's SHA-256 alone ${fixed(s.sha256CpuPerGiB, 2)} s/GiB`
  );
}

/**
 * Each target against this run's figures. Issue 10 set CPU and shared-core throughput for the
 * transport (the client, in the Node-RED process); the upload node adds the journal's SHA-256 of
 * every byte (issue 8), which is shown apart: what the node spends beyond the client, and the hash alone.
 */
function targetLines({ sizes }: Results['part1'], shared: SizeResult): string[] {
  const all = [...sizes, shared];
  const check = (what: string, values: number[], held: (v: number) => boolean, digits = 2, unit = '') =>
    `${values.every(held) ? 'held    ' : 'NOT held'}  ${what}: ${values.map((v) => fixed(v, digits)).join(' / ')}${unit}`;
  const sizesNote = `(${sizes.map((s) => sizeLabel(s.bytes)).join(' / ')}; shared cores ${sizeLabel(shared.bytes)})`;
  return [
    check(
      `transport (client alone) CPU per GiB at most 2x curl's ${sizesNote}`,
      all.map((s) => s.client.cpuRatio),
      (v) => v <= 2,
    ),
    check(
      "transport (client alone) throughput at least 0.95 of curl's on shared cores",
      [shared.client.ratio],
      (v) => v >= 0.95,
    ),
    check("upload node throughput at least 0.95 of curl's on shared cores", [shared.ratio], (v) => v >= 0.95),
    check(
      `upload node throughput at least 0.9 of curl's (${sizes.map((s) => sizeLabel(s.bytes)).join(' / ')})`,
      sizes.map((s) => s.ratio),
      (v) => v >= 0.9,
    ),
    check(
      `Node-RED peak RSS growth under 64 MiB whatever the size ${sizesNote}`,
      all.map((s) => s.peakGrowthMiB),
      (v) => v < 64,
      1,
      ' MiB',
    ),
    `counted apart: the upload node's CPU = the client's + the journal's SHA-256 of every byte (issue 8): ` +
      `node - client ${all.map((s) => fixed(s.oursCpuPerGiB - s.client.cpuPerGiB, 2)).join(' / ')} s/GiB, ` +
      `SHA-256 alone ${all.map((s) => fixed(s.sha256CpuPerGiB, 2)).join(' / ')} s/GiB; ` +
      `upload node ${all.map((s) => fixed(s.cpuRatio, 2)).join(' / ')}x curl's CPU per GiB`,
  ];
}

function countsTable(p: CountsResult): string {
  const { inRow, concurrent } = p;
  const row = (label: string, s: CountsResult['inRow'], maxInFlight: string) => [
    label,
    `${fixed(s.ms, 0)} ms`,
    String(s.server.heartbeats),
    String(s.server.tlsHandshakes),
    String(s.client.connections),
    maxInFlight,
    String(s.arrived),
    String(s.failures.length),
  ];
  return textTable(
    [
      'scenario',
      'time',
      'heartbeats (server)',
      'TLS handshakes (server)',
      'connections (client)',
      'max in flight',
      'arrived',
      'failures',
    ],
    [
      row(`${inRow.count} in a row`, inRow, '-'),
      row(`${concurrent.count} at once`, concurrent, String(concurrent.maxInFlight)),
    ],
  );
}

export function report(options: Options, { part1, shared, part2, part3 }: Results, started: number): void {
  const m = machine();
  const sizesArg = process.argv.includes('--sizes') ? ` -- --sizes ${options.sizesMiB.join(',')}` : '';
  const command = `npm run bench${options.quick ? ' -- --quick' : ''}${sizesArg}`;
  const out = (s = '') => process.stdout.write(`${s}\n`);
  out();
  out(
    `== Throughput, CPU and memory (median of ${options.repeats}, after one warm-up; MB = 10^6 bytes; ` +
      "CPU: the whole Node-RED process; client alone: the config node's client in the same process, " +
      'without the upload node, its journal and its SHA-256) ==',
  );
  out(sizeTable(part1.sizes));
  out(
    `core http request + tls-config, one segment (${part1.core.bytes} bytes in memory): ` +
      `${fixed(part1.core.mbps)} MB/s (${runsMs(part1.core.ms)} ms), RSS growth ${fixed(part1.core.growthMiB)} MiB`,
  );
  out();
  out(`== The same on two shared cores: ${shared.how} (median of ${options.sharedRepeats}) ==`);
  out(sizeTable([shared.size]));
  out();
  out('== Targets ==');
  targetLines(part1, shared.size).forEach((line) => out(line));
  out();
  out('== Many uploads through one config node (fresh Node-RED per line) ==');
  const p = part2;
  out(countsTable(p));
  out('targets: 1 heartbeat per session; 1 connection in a row (keep-alive); bounded concurrency; all arrive');
  out();
  const samples = p.polled.poll.samples;
  const pick = (f: (s: (typeof samples)[number]) => number) => ({
    first: f(samples[0]),
    last: f(samples[samples.length - 1]),
    max: Math.max(...samples.map(f)),
  });
  const cpu = pick((s) => s.cpuPercent);
  const rss = pick((s) => s.rssMiB);
  const { accepted, rejected, pending, failed } = p.polled.decided;
  out(`== ${p.polled.count} uploads polled at once by one history node (interval 1 s), ${p.polled.seconds} s ==`);
  out(
    textTable(
      ['at s', 'CPU % of a core', 'RSS MiB', 'history requests'],
      samples.map((s) => [fixed(s.second), fixed(s.cpuPercent), fixed(s.rssMiB), String(s.historyRequests)]),
    ),
  );
  out(
    `first/last/max: CPU ${fixed(cpu.first)}/${fixed(cpu.last)}/${fixed(cpu.max)} %, ` +
      `RSS ${fixed(rss.first)}/${fixed(rss.last)}/${fixed(rss.max)} MiB; ` +
      `after settling: ${accepted} accepted, ${rejected} rejected, ${pending} pending, ${failed} failed (Catch), ` +
      `${p.polled.count - accepted - rejected - pending - failed} undecided when the bench stopped waiting; ` +
      `heartbeats ${p.polled.server.heartbeats}; ` +
      `at most ${p.polled.maxInFlight} history requests in flight at the simulator; ` +
      `${p.polled.server.tlsHandshakes} TLS handshakes (uploads included)`,
  );
  out();
  out(
    `machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}; ` +
      `load average at start ${m.loadAverageAtStart.join(' ')}; took ${fixed((Date.now() - started) / 1000, 0)} s`,
  );
  out();
  out('== For the README (Performance) ==');
  out();
  out(
    `Measured with \`${command}\` on ${m.cpu}, ${m.cores} cores, Node ${m.node}, ` +
      'against the bundled simulator over loopback TLS.',
  );
  out();
  const { inRow, concurrent } = p;
  out(
    markdownTable(
      ['what', 'figure'],
      [
        ...part1.sizes.map((s) => [
          `upload node, ${sizeLabel(s.bytes)} file (${s.segments} segments)`,
          `${sizeFigures(s)}; Node-RED peak RSS growth ${fixed(s.peakGrowthMiB)} MiB`,
        ]),
        [
          `simulator, Node-RED and curl on the same 2 cores, ${sizeLabel(shared.size.bytes)} file`,
          `${sizeFigures(shared.size)}${shared.cpus ? '' : ` (${shared.how})`}`,
        ],
        [`core \`http request\` + \`tls-config\`, one segment in memory`, `${fixed(part1.core.mbps)} MB/s`],
        [
          `${inRow.count} small uploads in a row`,
          `${inRow.server.heartbeats} heartbeat(s), ${inRow.server.tlsHandshakes} TLS connection(s), ` +
            `${fixed(inRow.ms / inRow.count, 1)} ms per upload`,
        ],
        [
          `${concurrent.count} concurrent uploads`,
          `at most ${concurrent.maxInFlight} requests in flight, ${concurrent.server.heartbeats} heartbeat(s), ` +
            `${concurrent.arrived}/${concurrent.count} arrived`,
        ],
        [
          `${p.polled.count} uploads polled every second`,
          `CPU ${fixed(cpu.first)} → ${fixed(cpu.last)} % of a core (max ${fixed(cpu.max)}), ` +
            `RSS ${fixed(rss.first)} → ${fixed(rss.last)} MiB (max ${fixed(rss.max)}), ` +
            `~${fixed(median(samples.map((s) => s.historyRequests)), 0)} requests/s`,
        ],
        ...journalRows(part3),
      ],
    ),
  );
  out();
  out('== JSON ==');
  const json = { command, machine: m, options, throughput: part1, sharedCores: shared, counts: part2, journal: part3 };
  out(JSON.stringify(json, null, 2));
}
