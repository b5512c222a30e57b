/**
 * `npm start`: the bundled SCB simulator and a Node-RED (the development dependency) on
 * 127.0.0.1 with this package loaded and the "Report a folder" example deployed against the
 * simulator. Everything it writes lives in one demo folder (default `.demo`, gitignored).
 * The first start deploys the example; later starts keep the user's flows, credentials and the
 * simulator's certificates and history (`npm start -- --reset` starts afresh). Ctrl-C stops
 * everything it started.
 *
 * Environment: SCB_M2M_PORT (Node-RED, default 1880), SCB_M2M_SIMULATOR_PORT (default: any
 * free port), SCB_M2M_DEMO_DIR (default `<repo>/.demo`), SCB_M2M_NODE_RED (another Node-RED's
 * package directory, e.g. Node-RED 5 in CI; default the development dependency).
 *
 * Node-RED is embedded (`require('node-red')`) rather than spawned: one process, so Ctrl-C or
 * a crash cannot leave an orphan Node-RED behind, and a busy port is reported before anything
 * starts. Its settings are read from `<demo>/node-red/settings.js`, as any Node-RED reads
 * them from its user dir, so a user can change them there. The editor's port answers from the
 * first moment: "starting" (503) until the demo is ready, so no early request waits unanswered.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { startSimulator } from '../simulator';
import type { Simulator } from '../simulator/types';
import type { NodeRedApp as EmbeddedNodeRed } from 'node-red';
import { BASE_SETTINGS, PACKAGE_NAME, REPO, linkPackage, writeManifest, writeSettings } from './user-dir';

const HOST = BASE_SETTINGS.uiHost;
const EXAMPLE = path.join(REPO, 'examples', '02 - Report a folder.json');
/** The simulator decides an upload within 2 s; SCB takes minutes, hence the example's 10 s. */
const DEMO_POLL_INTERVAL_S = 2;
const DEMO_ORGANISATIONSNUMMER = '9990000045';
const DEMO_UNDERSOKNING = 'VINN';

/** What Node-RED emits as 'runtime-event' (other events' arguments are not read). */
type RuntimeEvent = { id?: string; payload?: { state?: string } };

type FlowNode = { id: string; type: string; [key: string]: unknown };

/** A failure the user can act on: printed as it is, without a stack. */
class StartError extends Error {}

/** What was started, stopped in reverse order; every step runs even if one fails. */
const cleanups: Array<{ what: string; stop: () => Promise<void> }> = [];

async function stopAll(): Promise<void> {
  for (const { what, stop } of cleanups.splice(0).reverse()) {
    try {
      await stop();
    } catch (err) {
      console.error(`Stopping the ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

interface DemoPaths {
  demo: string;
  simulator: string;
  userDir: string;
  outbox: string;
  done: string;
  samples: string;
}

function demoPaths(): DemoPaths {
  const demo = path.resolve(process.env.SCB_M2M_DEMO_DIR || path.join(REPO, '.demo'));
  return {
    demo,
    simulator: path.join(demo, 'simulator'),
    userDir: path.join(demo, 'node-red'),
    outbox: path.join(demo, 'outbox'),
    done: path.join(demo, 'done'),
    samples: path.join(demo, 'samples'),
  };
}

function portFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new StartError(`${name}=${text} is not a port: use a whole number from 1 to 65535 (0: any free port).`);
  }
  return port;
}

function portInUse(port: number, what: string, variable: string): StartError {
  return new StartError(
    `Port ${port} on ${HOST} is already in use, so the ${what} cannot start (is another \`npm start\` or Node-RED running?). ` +
      `Stop that program, or choose another port, e.g. ${variable}=${port + 1} npm start`,
  );
}

/** The last day of the previous month, `yyyy-MM-dd`: what the example flow reports files for. */
function previousMonthEnd(now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 0)).toISOString().slice(0, 10);
}

/** A small VINN report in the shape of SCB's published sample; `extra` goes inside the root. */
function vinnSample(extra = ''): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<Report xmlns="http://scb.se/gdb/vinn" ReportingAgentName="Fiktivt Bolag AB" ReportingAgentCode="${DEMO_ORGANISATIONSNUMMER}" FileCreated="${new Date().toISOString()}" ReferencePeriod="${previousMonthEnd()}">${extra}
  <Holder HolderName="Fiktivt Bolag AB" FIIdentificationNumber="${DEMO_ORGANISATIONSNUMMER}" HolderCountry="SE">
    <Holding IdentifierType="ISIN" Identifier="SE0000000001" NominalCurrency="SEK" ReportingBasis="1" Observation="1" EntityWithinTheGroup="false">
      <Valuation Value="1000000" ValuationCurrency="SEK" AccruedInterestForMarketValues="false" AccruedInterest="0"/>
    </Holding>
  </Holder>
</Report>
`;
}

function writeSamples(dir: string): { accepted: string; rejected: string } {
  const accepted = path.join(dir, 'V40_example.xml');
  const rejected = path.join(dir, 'V40_rejected.xml');
  fs.writeFileSync(accepted, vinnSample());
  // The simulator rejects any file that contains this marker (simulator/uploads.ts).
  fs.writeFileSync(
    rejected,
    vinnSample('\n  <!-- SIMULATE-REJECT: the simulator rejects this file, to show what a rejection looks like. -->'),
  );
  return { accepted, rejected };
}

/**
 * The Node-RED user dir: settings.js (once), a package.json naming this package and a link
 * to the repo in its node_modules (how an installed package looks to Node-RED 4 and 5; no npm
 * install runs). Its flows stay as they are: the first start deploys the demo flow through the
 * admin API once Node-RED runs, so Node-RED itself encrypts its credentials.
 */
function prepareUserDir(userDir: string): string {
  const settings = path.join(userDir, 'settings.js');
  if (!fs.existsSync(settings)) {
    writeSettings(
      userDir,
      { ...BASE_SETTINGS, uiPort: 1880, credentialSecret: crypto.randomBytes(24).toString('hex') },
      [
        'Node-RED settings of the `npm start` demo. Written once by scripts/start.js and then',
        'kept, so the credentials stay readable; delete the demo folder to start afresh.',
        "credentialSecret encrypts flows_cred.json; it only ever protects the simulator's test passphrase.",
      ],
    );
  }
  writeManifest(userDir, {
    name: 'scb-m2m-demo',
    description: `The npm start demo of ${PACKAGE_NAME}`,
    private: true,
    dependencies: { [PACKAGE_NAME]: `file:${REPO}` },
  });
  // This checkout, even where another copy of the package was installed.
  linkPackage(userDir, 'replace');
  return settings;
}

/** `--reset`: the flows, their credentials (and Node-RED's backups of both) and the simulator's state go; the folders of files stay. */
function resetDemo(paths: DemoPaths): void {
  for (const name of ['flows.json', 'flows_cred.json', '.flows.json.backup', '.flows_cred.json.backup'])
    fs.rmSync(path.join(paths.userDir, name), { force: true });
  fs.rmSync(paths.simulator, { recursive: true, force: true });
}

/**
 * The one change a later start makes to the user's flows: a config node that points at this
 * demo's simulator (its CA file) but at another port, because the simulator's last port was
 * taken, follows it to the new one. Anything else the user set stays. Returns the names of the
 * config nodes it changed.
 */
function followSimulator(flowsFile: string, simulator: Simulator): string[] {
  let flows: unknown;
  try {
    flows = JSON.parse(fs.readFileSync(flowsFile, 'utf8'));
  } catch {
    return []; // Not ours to repair: Node-RED reports a broken flows file itself.
  }
  if (!Array.isArray(flows)) return [];
  const moved = (flows as FlowNode[]).filter(
    (n) =>
      n.type === 'scb-m2m-config' &&
      n.environment === 'custom' &&
      n.caPath === simulator.caPath &&
      n.baseUrl !== simulator.url,
  );
  for (const config of moved) config.baseUrl = simulator.url;
  if (moved.length > 0) fs.writeFileSync(flowsFile, `${JSON.stringify(flows, null, 4)}\n`);
  return moved.map((n) => String(n.name || n.id));
}

/** The "Report a folder" example, pointed at the simulator and the demo folders. */
function demoFlow(simulator: Simulator, paths: DemoPaths): FlowNode[] {
  const flow = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8')) as FlowNode[];
  const expect = <T>(found: T | undefined, what: string): T => {
    if (found === undefined)
      throw new StartError(`${EXAMPLE} has no ${what}; scripts/start.ts must follow the example's shape.`);
    return found;
  };
  const config = expect(
    flow.find((n) => n.type === 'scb-m2m-config'),
    'scb-m2m-config node',
  );
  const certificate = simulator.certificates.valid;
  Object.assign(config, {
    name: 'SCB simulator (npm start)',
    environment: 'custom',
    baseUrl: simulator.url,
    apiVersion: 'v2',
    certPath: certificate.path,
    caPath: simulator.caPath,
    organisationsnummer: DEMO_ORGANISATIONSNUMMER,
    undersokning: DEMO_UNDERSOKNING,
    // Given inline, the admin API stores it encrypted in flows_cred.json.
    credentials: { passphrase: certificate.passphrase },
  });
  const tab = expect(
    flow.find((n) => n.type === 'tab'),
    'tab',
  );
  const folders: Record<string, string> = { OUTBOX_DIR: paths.outbox, DONE_DIR: paths.done };
  const env = (tab.env ?? []) as Array<{ name: string; value: string; type: string }>;
  for (const name of Object.keys(folders))
    expect(
      env.find((e) => e.name === name),
      `tab variable ${name}`,
    );
  tab.env = env.map((e) => (e.name in folders ? { name: e.name, value: folders[e.name], type: 'str' } : e));
  for (const history of flow.filter((n) => n.type === 'scb-m2m-history' && n.mode === 'poll'))
    history.interval = DEMO_POLL_INTERVAL_S;
  return flow;
}

/** Lets this script's own admin requests through while everyone else is told "starting". */
const DEMO_TOKEN_HEADER = 'x-scb-m2m-demo-start';
const DEMO_TOKEN = crypto.randomBytes(16).toString('hex');

async function adminRequest(base: string, method: 'GET' | 'POST', route: string, body?: unknown): Promise<Response> {
  return fetch(new URL(route, base), {
    method,
    headers: {
      'content-type': 'application/json',
      'node-red-api-version': 'v1',
      'node-red-deployment-type': 'full',
      [DEMO_TOKEN_HEADER]: DEMO_TOKEN,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/**
 * The watch node starts watching a moment after the flow starts (node-watch first probes
 * the file system). Saves a dot-file, which the flow's filter drops, until the watch node
 * reports it: from then on a dropped file is seen.
 */
async function outboxWatched(RED: EmbeddedNodeRed, outbox: string): Promise<void> {
  const probe = path.join(outbox, '.npm-start-probe');
  const hook = 'onSend.scbM2mDemo';
  let seen = false;
  RED.hooks.add(hook, (events: Array<{ msg: { filename?: unknown }; source: { node: { type: string } } }>) => {
    seen ||= events.some((e) => e.source.node.type === 'watch' && e.msg.filename === probe);
  });
  try {
    const deadline = Date.now() + 10_000;
    while (!seen) {
      if (Date.now() > deadline)
        throw new StartError(
          `The demo flow does not see changes in ${outbox} (its watch node reported nothing within 10 s).`,
        );
      fs.writeFileSync(probe, 'npm start checks that this folder is watched\n');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    RED.hooks.remove(hook);
    fs.rmSync(probe, { force: true });
  }
}

/** Fails when Node-RED did not find this package through the link, or could not load a node of it. */
async function assertPackageLoaded(editor: string): Promise<void> {
  const answer = await adminRequest(editor, 'GET', `nodes/${PACKAGE_NAME}`);
  const info = answer.ok ? ((await answer.json()) as { nodes?: Array<{ name: string; err?: string }> }) : {};
  const broken = (info.nodes ?? []).filter((set) => set.err).map((set) => `${set.name}: ${set.err}`);
  if (!answer.ok || !info.nodes?.length || broken.length > 0) {
    throw new StartError(
      `Node-RED did not load ${PACKAGE_NAME} from ${REPO} (HTTP ${answer.status}${broken.length ? `; ${broken.join('; ')}` : ''}). ` +
        'Run `npm run build`, then `npm start` again.',
    );
  }
}

const STARTING_RETRY_S = 2;
const STARTING_TEXT = 'The SCB M2M demo (Node-RED) is starting. Try again in a moment.';
const STARTING_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${STARTING_RETRY_S}">
<title>Starting…</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>Starting…</h1>
<p>${STARTING_TEXT} This page reloads by itself and shows the Node-RED editor once it is ready.</p></body></html>
`;

/** The answer to every request before the demo is ready: 503 with Retry-After, a page that reloads for browsers, one line for scripts. */
function answerStarting(req: http.IncomingMessage, res: http.ServerResponse): void {
  const html = /text\/html/.test(req.headers.accept ?? '');
  res.writeHead(503, {
    'retry-after': String(STARTING_RETRY_S),
    'content-type': html ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html ? STARTING_PAGE : `${STARTING_TEXT}\n`);
}

/**
 * Resolves once Node-RED has started the flows it loaded, or decided not to (missing types,
 * safe mode, flows stopped by the user): the runtime loads flows after start() resolves.
 */
function flowsSettled(RED: EmbeddedNodeRed): Promise<void> {
  return new Promise<void>((resolve) => {
    const started = () => {
      RED.events.off('flows:started', started);
      RED.events.off('runtime-event', notStarted);
      resolve();
    };
    const notStarted = (event: RuntimeEvent) => {
      if (event.id === 'runtime-state' && (event.payload?.state === 'stop' || event.payload?.state === 'safe'))
        started();
    };
    RED.events.on('flows:started', started);
    RED.events.on('runtime-event', notStarted);
  });
}

function listen(server: http.Server, port: number, variable: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const refused = (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? portInUse(port, what, variable) : err);
    server.once('error', refused);
    server.listen(port, HOST, () => {
      server.off('error', refused);
      server.on('error', (err) => console.error(`The ${what} failed: ${err.message}`));
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One `npm start` per demo folder: a second one would share the simulator's files and overwrite the flows under the first. */
function lockDemoDir(demo: string): void {
  const lock = path.join(demo, 'npm-start.pid');
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const pid = Number(fs.readFileSync(lock, 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new StartError(
        `Another npm start (process ${pid}) is using ${demo}. Stop it first (Ctrl-C in its terminal), or give this one its own folder: SCB_M2M_DEMO_DIR=/some/other/dir npm start`,
      );
    }
    // Left behind by a demo that was killed: take it over.
    fs.writeFileSync(lock, String(process.pid));
  }
  cleanups.push({ what: 'demo folder lock', stop: async () => fs.rmSync(lock, { force: true }) });
}

const USAGE =
  'Usage: npm start [-- --reset]\n  --reset  start afresh: the example flow deployed again, new simulator certificates, no history';

function parseOptions(): { reset: boolean } {
  try {
    const { values } = parseArgs({ options: { reset: { type: 'boolean' } }, strict: true });
    return { reset: values.reset === true };
  } catch (err) {
    throw new StartError(`${(err as Error).message}\n${USAGE}`);
  }
}

async function main(): Promise<void> {
  const options = parseOptions();
  const paths = demoPaths();
  const nodeRedPort = portFromEnv('SCB_M2M_PORT', 1880);
  const simulatorPort = portFromEnv('SCB_M2M_SIMULATOR_PORT', 0);
  for (const dir of [paths.userDir, paths.outbox, paths.done, paths.samples]) fs.mkdirSync(dir, { recursive: true });
  lockDemoDir(paths.demo);

  // The editor's port first: when it is taken, nothing in the demo folder has changed yet.
  // From now on every request is answered: "starting" until the demo is ready, then the editor.
  let admin: http.RequestListener | undefined;
  let ready = false;
  const server = http.createServer((req, res) => {
    if (admin && (ready || req.headers[DEMO_TOKEN_HEADER] === DEMO_TOKEN)) admin(req, res);
    else answerStarting(req, res);
  });
  const port = await listen(server, nodeRedPort, 'SCB_M2M_PORT', 'Node-RED editor');
  cleanups.push({
    what: 'web server',
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });

  if (options.reset) resetDemo(paths);
  const flowsFile = path.join(paths.userDir, 'flows.json');
  // No flows yet (or a first start that failed before its deploy): deploy the example.
  const firstStart = !fs.existsSync(flowsFile);

  let simulator: Simulator;
  try {
    simulator = await startSimulator({ dir: paths.simulator, port: simulatorPort });
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
      ? portInUse(simulatorPort, 'SCB simulator', 'SCB_M2M_SIMULATOR_PORT')
      : err;
  }
  cleanups.push({ what: 'SCB simulator', stop: () => simulator.stop() });
  const samples = writeSamples(paths.samples);
  const settingsPath = prepareUserDir(paths.userDir);
  const followed = firstStart ? [] : followSimulator(flowsFile, simulator);

  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RED = require(process.env.SCB_M2M_NODE_RED || 'node-red') as EmbeddedNodeRed;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fileSettings = require(settingsPath) as Record<string, unknown>;
  // httpNodeRoot false: the demo serves the editor only, at the root of the port.
  RED.init(server, {
    ...fileSettings,
    userDir: paths.userDir,
    uiHost: HOST,
    uiPort: port,
    httpAdminRoot: '/',
    httpNodeRoot: false,
  });
  admin = RED.httpAdmin;
  cleanups.push({ what: 'Node-RED', stop: () => RED.stop() });
  const loaded = flowsSettled(RED);
  await RED.start();
  await loaded;

  const editor = `http://${HOST}:${port}/`;
  await assertPackageLoaded(editor);
  if (firstStart) {
    // The admin API answers once the flow is saved; it is watching the outbox once it has started.
    const started = flowsSettled(RED);
    const deployed = await adminRequest(editor, 'POST', 'flows', demoFlow(simulator, paths));
    if (!deployed.ok)
      throw new StartError(`Deploying the demo flow failed: HTTP ${deployed.status} ${await deployed.text()}`);
    await started;
    await outboxWatched(RED, paths.outbox);
  }
  ready = true;

  const copy = process.platform === 'win32' ? 'copy' : 'cp';
  const state = firstStart
    ? [
        ...(options.reset ? [` --reset: the earlier flows, credentials and simulator state were removed.`] : []),
        ` The "Report a folder to SCB" example is deployed. Your changes to the flows, the`,
        ` credentials and the simulator (certificates, history) are kept in ${paths.demo}`,
        ` for the next npm start; npm start -- --reset starts afresh.`,
      ]
    : [
        ` Kept from the last run (npm start -- --reset starts afresh with the example):`,
        `   your flows and credentials in ${paths.userDir}`,
        `   the simulator's certificates and history in ${paths.simulator}`,
        ...(followed.length > 0
          ? [
              `   The simulator's last port was taken: ${followed.map((name) => `"${name}"`).join(', ')} now ${followed.length === 1 ? 'points' : 'point'} at ${simulator.url}`,
            ]
          : []),
      ];
  console.log(
    [
      '',
      '================================================================================',
      ` SCB M2M demo ready at ${editor}`,
      '================================================================================',
      ...state,
      '',
      ` 1. Open ${editor} in a browser: the "Report a folder to SCB" tab`,
      `    reports to the local SCB simulator, not to SCB.`,
      ` 2. Drop a file into this folder:`,
      `      ${paths.outbox}`,
      `    e.g. a sample that the simulator accepts, or one that it rejects:`,
      `      ${copy} "${samples.accepted}" "${paths.outbox}"`,
      `      ${copy} "${samples.rejected}" "${paths.outbox}"`,
      ` 3. The result shows in the editor's debug sidebar (the bug icon, top right) and`,
      `    below. Accepted files move to ${paths.done}; rejected ones stay.`,
      '',
      ` SCB simulator: ${simulator.url} (certificate ${certificateLabel(simulator)})`,
      ' Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

function certificateLabel(simulator: Simulator): string {
  const c = simulator.certificates.valid;
  return `${c.path}, organisationsnummer ${c.organisationsnummer}, ${c.undersokningar.join('+')}`;
}

let stopping = false;
function shutdown(signal: NodeJS.Signals): void {
  if (stopping) {
    console.error(`${signal} again: exiting without waiting.`);
    process.exit(130);
  }
  stopping = true;
  console.log(`\n${signal}: stopping Node-RED and the SCB simulator...`);
  // Exit explicitly, so that nothing left open (an editor's websocket, a node's timer) keeps the demo alive.
  void stopAll().then(() => process.exit(0));
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

main().catch(async (err: unknown) => {
  console.error(err instanceof StartError ? `\n${err.message}\n` : err);
  await stopAll();
  process.exit(1);
});
