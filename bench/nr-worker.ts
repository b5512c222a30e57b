/**
 * The Node-RED side of the benchmark, in a process of its own (forked by bench/runner.ts) so
 * that the RSS and CPU it reports are those of a Node-RED runtime running our real nodes
 * (loaded with node-red-node-test-helper) and nothing else.
 */
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { RunningDigest } from '../lib/digest';
import type { ClientStats } from '../lib/types';
import type { ScbM2mConfigNode } from '../nodes/scb-m2m-config/model';
import { testRuntime, type FlowMessage } from './test-runtime';
import type {
  CoreOutcome,
  DecidedOutcome,
  FlowSettings,
  LoadOutcome,
  PollOutcome,
  Sample,
  Sha256Outcome,
  UploadItem,
  UploadOutcome,
  WorkerCommand,
  WorkerRequest,
  WorkerResponse,
} from './protocol';

const SAMPLE_MS = 20;
const MiB = 1024 * 1024;
/** Longest wait for one msg to come out of a flow (a 1 GiB upload on a busy 2-core machine included). */
const MSG_TIMEOUT_MS = 10 * 60_000;

// The delivery journal in the benchmark's own folder (bench/run.ts sets it), never in the user's home.
const { helper, scbModules: nodeModules } = testRuntime({ scbM2mJournalDir: process.env.SCB_M2M_BENCH_JOURNAL });
const coreModules = ['05-tls.js', '21-httprequest.js'].map((file) =>
  require(path.join(path.dirname(require.resolve('@node-red/nodes/package.json')), 'core', 'network', file)),
);

/** Highest RSS since the last reset, sampled every 20 ms (the event loop's view: a blocked loop samples late). */
const rss = {
  peak: 0,
  reset(): number {
    this.peak = process.memoryUsage.rss();
    return this.peak;
  },
};
setInterval(() => {
  rss.peak = Math.max(rss.peak, process.memoryUsage.rss());
}, SAMPLE_MS).unref();

/** Messages leaving the flow, matched to the msg that caused them by `benchId`. */
const waiting = new Map<string, (outcome: { output: string; msg: FlowMessage }) => void>();
const decided = { accepted: 0, rejected: 0, pending: 0, failures: [] as string[] };
let config: ScbM2mConfigNode | undefined;
let settings: FlowSettings | undefined;

function listen(id: string) {
  helper.getNode(id)?.on('input', (msg) => {
    const key = String(msg.benchId);
    const resolve = waiting.get(key);
    if (resolve) {
      waiting.delete(key);
      resolve({ output: id, msg });
    } else if (id === 'accepted' || id === 'rejected' || id === 'pending') {
      decided[id]++;
    } else if (id === 'failed') {
      decided.failures.push(errorText(msg));
    }
  });
}

function errorText(msg: FlowMessage): string {
  const error = msg.error as { message?: string } | undefined;
  return `${String(msg.benchId)}: ${error?.message ?? 'unknown error'}`;
}

/** Sends msg into node `id` and resolves with the msg that leaves the flow for it. */
function through(id: string, msg: FlowMessage): Promise<{ output: string; msg: FlowMessage }> {
  const key = String(msg.benchId);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(key);
      reject(new Error(`no answer from the flow for ${key} within ${MSG_TIMEOUT_MS / 1000} s`));
    }, MSG_TIMEOUT_MS);
    waiting.set(key, (outcome) => {
      clearTimeout(timer);
      resolve(outcome);
    });
    helper.getNode(id)?.receive(msg);
  });
}

async function clientStats(): Promise<ClientStats> {
  if (!config) throw new Error('no flow loaded');
  return (await config.acquireClient()).stats();
}

async function load(s: FlowSettings): Promise<LoadOutcome> {
  settings = s;
  const z = 'tab';
  const flow: Array<Record<string, unknown>> = [
    { id: z, type: 'tab', label: 'bench' },
    {
      id: 'cfg',
      type: 'scb-m2m-config',
      environment: 'custom',
      baseUrl: s.baseUrl,
      apiVersion: 'v2',
      certPath: s.certPath,
      caPath: s.caPath,
      organisationsnummer: s.organisationsnummer,
      undersokning: s.undersokning,
      expiryWarningDays: 30,
    },
    {
      id: 'upload',
      z,
      type: 'scb-m2m-upload',
      config: 'cfg',
      filformat: s.filformat,
      referensperiod: s.referensperiod,
      wires: [['sent']],
    },
    {
      id: 'history',
      z,
      type: 'scb-m2m-history',
      config: 'cfg',
      mode: 'poll',
      interval: 1,
      timeout: 3600,
      wires: [['accepted'], ['rejected'], ['pending']],
    },
    { id: 'tls', type: 'tls-config', cert: s.certPem, key: s.keyPem, ca: s.caPath, verifyservercert: true },
    {
      id: 'request',
      z,
      type: 'http request',
      method: 'use',
      ret: 'txt',
      url: '',
      tls: 'tls',
      persist: true,
      paytoqs: 'ignore',
      wires: [['answered']],
    },
    { id: 'catcher', z, type: 'catch', scope: null, uncaught: false, wires: [['failed']] },
    ...['sent', 'accepted', 'rejected', 'pending', 'answered', 'failed'].map((id) => ({ id, z, type: 'helper' })),
  ];
  await helper.load([...nodeModules, ...coreModules], flow, { cfg: { passphrase: s.passphrase } });
  // Without this, the spies would keep every msg and status ever sent, and we would measure them.
  helper._sandbox.restore();
  for (const id of ['sent', 'accepted', 'rejected', 'pending', 'answered', 'failed']) listen(id);
  config = helper.getNode('cfg') as unknown as ScbM2mConfigNode;
  return { loadedRss: rss.reset() };
}

/** A small XML-looking file (the simulator rejects what does not start with '<'), different for each msg. */
function smallPayload(bytes: number, seed: number): Buffer {
  return Buffer.alloc(bytes, `<bench seed="${seed}"/>`);
}

let sequence = 0;
async function uploadOne(item: UploadItem): Promise<{ uploadId?: string; failure?: string }> {
  const msg: FlowMessage = { benchId: `u${++sequence}`, filnamn: item.filnamn };
  // The same file is sent once per run on purpose: say so, or the journal refuses it as a duplicate.
  if (item.filename) Object.assign(msg, { filename: item.filename, resend: true });
  else msg.payload = smallPayload(item.bytes ?? 0, sequence);
  const { output, msg: out } = await through('upload', msg);
  if (output === 'sent' && typeof out.uploadId === 'string') return { uploadId: out.uploadId };
  return { failure: output === 'failed' ? errorText(out) : `${String(msg.benchId)}: ${output} without an uploadId` };
}

/** A file through the config node's client in lib/, as the upload node would send it, without the node. */
async function clientOne(item: UploadItem): Promise<{ uploadId?: string; failure?: string }> {
  if (!config || !settings || !item.filename) throw new Error('client uploads need a loaded flow and a file');
  const { organisationsnummer, undersokning, filformat, referensperiod } = settings;
  const client = await config.acquireClient();
  const request = { organisationsnummer, undersokning, filformat, referensperiod, filnamn: item.filnamn };
  return client.upload({ ...request, source: { path: item.filename } }).then(
    (result) => ({ uploadId: result.uploadId }),
    (err: unknown) => ({ failure: `${item.filnamn}: ${err instanceof Error ? err.message : String(err)}` }),
  );
}

async function upload(items: UploadItem[], concurrent: boolean, via = 'node'): Promise<UploadOutcome> {
  const one = via === 'client' ? clientOne : uploadOne;
  const startRss = rss.reset();
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  let results: Array<{ uploadId?: string; failure?: string }> = [];
  if (concurrent) results = await Promise.all(items.map(one));
  else for (const item of items) results.push(await one(item));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const { user, system } = process.cpuUsage(cpu);
  return {
    ms,
    uploadIds: results.flatMap((r) => (r.uploadId ? [r.uploadId] : [])),
    failures: results.flatMap((r) => (r.failure ? [r.failure] : [])),
    startRss,
    peakRss: rss.peak,
    cpuMicros: user + system,
    client: await clientStats(),
  };
}

async function poll(uploadIds: string[], seconds: number): Promise<PollOutcome> {
  decided.accepted = decided.rejected = decided.pending = 0;
  decided.failures = [];
  const before = (await clientStats()).requests;
  uploadIds.forEach((uploadId, i) => helper.getNode('history')?.receive({ benchId: `p${i}`, uploadId }));
  const samples: Sample[] = [];
  const started = process.hrtime.bigint();
  let cpu = process.cpuUsage();
  let at = started;
  let requests = before;
  for (let second = 1; second <= seconds; second++) {
    // Aim at whole seconds since the start; a saturated event loop makes a sample late, and it says so.
    const due = Number(started - process.hrtime.bigint()) / 1e6 + second * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due)));
    const cpuNow = process.cpuUsage(cpu);
    const now = process.hrtime.bigint();
    const stats = await clientStats();
    samples.push({
      second: Number(now - started) / 1e9,
      cpuPercent: ((cpuNow.user + cpuNow.system) / (Number(now - at) / 1e3)) * 100,
      rssMiB: process.memoryUsage.rss() / MiB,
      historyRequests: stats.requests - requests,
    });
    cpu = process.cpuUsage();
    at = now;
    requests = stats.requests;
  }
  const pendingAtEnd = uploadIds.length - decided.accepted - decided.rejected - decided.pending;
  return { samples, pendingAtEnd, client: await clientStats() };
}

async function awaitDecided(count: number, timeoutMs: number): Promise<DecidedOutcome> {
  const deadline = Date.now() + timeoutMs;
  const ended = () => decided.accepted + decided.rejected + decided.pending + decided.failures.length;
  while (ended() < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  const { accepted, rejected, pending, failures } = decided;
  const client = await clientStats();
  return { accepted, rejected, pending, failed: failures.length, failures: failures.slice(0, 5), client };
}

/** The core nodes' way: the whole multipart body in memory, cookies carried in msg.cookies. */
async function coreSegments(
  heartbeatUrl: string,
  segmentUrls: string[],
  segmentFile: string,
  filnamn: string[],
): Promise<CoreOutcome> {
  const beat = await through('request', { benchId: 'core-heartbeat', url: heartbeatUrl, method: 'GET' });
  if (beat.output !== 'answered' || beat.msg.statusCode !== 200) {
    throw new Error(`core heartbeat failed: ${JSON.stringify(beat.msg.statusCode ?? beat.msg.error)}`);
  }
  const cookies = beat.msg.responseCookies;
  const segment = await fs.readFile(segmentFile);
  const startRss = rss.reset();
  const ms: number[] = [];
  const statusCodes: number[] = [];
  for (const [i, url] of segmentUrls.entries()) {
    const started = process.hrtime.bigint();
    const { output, msg } = await through('request', {
      benchId: `core-${i}`,
      url,
      method: 'POST',
      cookies,
      headers: { 'content-type': 'multipart/form-data' },
      payload: { File: { value: segment, options: { filename: filnamn[i], contentType: 'application/octet-stream' } } },
    });
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (output !== 'answered') throw new Error(`core segment failed: ${errorText(msg)}`);
    statusCodes.push(Number(msg.statusCode));
  }
  return { ms, statusCodes, startRss, peakRss: rss.peak };
}

/** What the upload node adds to the client for a file: the journal's SHA-256 of its bytes, measured alone. */
async function sha256Alone(bytes: number): Promise<Sha256Outcome> {
  const chunk = Buffer.alloc(MiB, 0x5a);
  const digest = new RunningDigest(bytes);
  const cpu = process.cpuUsage();
  for (let offset = 0; offset < bytes; offset += chunk.length) {
    digest.feed(offset, chunk.subarray(0, Math.min(chunk.length, bytes - offset)));
  }
  await digest.settle();
  if (digest.digest() === undefined) throw new Error('the SHA-256 was not complete');
  const { user, system } = process.cpuUsage(cpu);
  return { cpuMicros: user + system };
}

async function run(command: WorkerCommand): Promise<unknown> {
  switch (command.op) {
    case 'load':
      return load(command.settings);
    case 'upload':
      return upload(command.items, command.concurrent, command.via);
    case 'poll':
      return poll(command.uploadIds, command.seconds);
    case 'await-decided':
      return awaitDecided(command.count, command.timeoutMs);
    case 'core-segments':
      return coreSegments(command.heartbeatUrl, command.segmentUrls, command.segmentFile, command.filnamn);
    case 'sha256':
      return sha256Alone(command.bytes);
    case 'stop':
      await helper.unload();
      return {};
  }
}

process.on('message', (request: WorkerRequest) => {
  run(request.command)
    .then(
      (result) => reply({ id: request.id, ok: true, result }),
      (err: unknown) => reply({ id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    )
    .finally(() => {
      // After 'stop' the channel closes so that the process can end by itself.
      if (request.command.op === 'stop') process.disconnect?.();
    });
});

function reply(response: WorkerResponse) {
  if (process.connected) process.send?.(response);
}
