/**
 * A real Node-RED in its own process, as a user runs it: `node red.js --userDir <dir> --port <p>`,
 * with this package in the user dir's node_modules (linked, unless the caller installed it, e.g.
 * from a tarball). Used by the browser, i18n, package, admin-auth, secrets and restart tests.
 * Which Node-RED: the dev dependency, or the package directory in SCB_M2M_NODE_RED
 * (scripts/test-node-red-5.sh points it at Node-RED 5).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BASE_SETTINGS,
  REPO,
  linkPackage,
  writeManifest,
  writeSettings as writeSettingsFile,
} from '../../scripts/user-dir';
import { runNode } from '../../scripts/process';
import { sha256 } from './util';

export { PACKAGE_NAME, REPO } from '../../scripts/user-dir';
const PACKAGE_JSON = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  'node-red': { nodes: Record<string, string> };
};
/** The four node types package.json declares. */
export const NODE_TYPES = Object.keys(PACKAGE_JSON['node-red'].nodes);

/** The Node-RED package directory the tests run against. */
export function nodeRedDir(): string {
  return process.env.SCB_M2M_NODE_RED ?? path.dirname(require.resolve('node-red/package.json'));
}

export function nodeRedVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(nodeRedDir(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** A fresh, empty user dir (with a package.json, so `npm install` installs into it). */
export function makeUserDir(prefix = 'scb-m2m-node-red-'): string {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  writeManifest(userDir, { name: 'scb-m2m-test-user-dir', private: true });
  return userDir;
}

/** Levels at which Node-RED still logs "Server now running" and "Started flows", the lines startNodeRed waits for. */
const LEVELS_WITH_INFO = [undefined, 'info', 'debug', 'trace'];

/**
 * Writes `<userDir>/settings.js`: `settings` (JSON-able) over the defaults (scripts/user-dir.ts),
 * diagnostics off, and a credential secret that is the same for the same user dir (so a
 * restart reads the credentials it wrote).
 */
export function writeSettings(userDir: string, settings: Record<string, unknown> = {}): void {
  const all = {
    ...BASE_SETTINGS,
    credentialSecret: sha256(userDir).slice(0, 32),
    diagnostics: { enabled: false },
    ...settings,
  };
  const level = (all.logging as { console?: { level?: string } }).console?.level;
  if (!LEVELS_WITH_INFO.includes(level))
    throw new Error(`startNodeRed waits for an info line in the log: logging level ${level} would hide it`);
  writeSettingsFile(userDir, all);
}

/** adminAuth for `settings`: the credentials strategy with these users (passwords hashed here). */
export function credentialsAuth(
  users: Array<{ username: string; password: string; permissions: string | string[] }>,
): Record<string, unknown> {
  const bcrypt = require('bcryptjs') as { hashSync(password: string, rounds: number): string };
  return {
    type: 'credentials',
    users: users.map((user) => ({ ...user, password: bcrypt.hashSync(user.password, 4) })),
  };
}

export interface NodeRedProcess {
  /** e.g. `http://127.0.0.1:41234/` (the admin root). */
  readonly url: string;
  /** The same without the trailing slash, for `${base}/flows`. */
  readonly base: string;
  readonly port: number;
  readonly userDir: string;
  /** Everything Node-RED wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM (Node-RED closes its flows and flushes context), then waits for the exit; SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash or a power cut ends it: nothing is closed or flushed. Waits for the exit. */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Settings over writeSettings' defaults; settings.js is written on every start. */
  settings?: Record<string, unknown>;
  /** The port to listen on (default 0: one the system picks). The same dir and port start it again. */
  port?: number;
  /** Extra environment for Node-RED (e.g. where an example flow watches). */
  env?: Record<string, string>;
  /** How long to wait for "Server now running" and "Started flows" (default 30 s). */
  timeoutMs?: number;
}

/**
 * Starts Node-RED on `userDir` (linking this package there unless it is installed) and resolves once
 * it logged "Server now running" (its admin API answers from then on) and then "Started flows" (or
 * "Waiting for missing types"); rejects with its output if it exits or hangs.
 */
export function startNodeRed(userDir: string, options: StartOptions = {}): Promise<NodeRedProcess> {
  writeSettings(userDir, options.settings);
  // A package the caller installed (package.test.ts, from the tarball) stays.
  linkPackage(userDir, 'keep');
  const settingsFile = path.join(userDir, 'settings.js');
  const run = runNode(
    path.join(nodeRedDir(), 'red.js'),
    ['--settings', settingsFile, '--userDir', userDir, '--port', String(options.port ?? 0)],
    {
      cwd: userDir,
      env: options.env,
    },
  );
  const { output } = run;
  // Node-RED stops its flows on SIGTERM and flushes context; a hung one is killed after 10 s.
  const stop = async () => void (await run.stop('SIGTERM', 10_000));
  const handle = (url: string): NodeRedProcess => ({
    url,
    base: url.replace(/\/$/, ''),
    port: Number(new URL(url).port),
    userDir,
    output,
    stop,
    kill: async () => void (await run.kill()),
  });
  // "Server now running at http://127.0.0.1:<port>/" (the port Node-RED chose for --port 0) and
  // "Started flows" for the flows it has: Node-RED 4 says them in that order, 5 the other way
  // round when it has flows. A deploy made after both is the next "Started flows".
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  return run
    .waitFor(/now running at (http:\/\/127\.0\.0\.1:\d+\/)/, timeoutMs, 'Node-RED listening')
    .then(async ([, url]) => {
      await run.waitFor(
        /Started flows|Waiting for missing types/,
        deadline - Date.now(),
        'Node-RED starting its flows',
      );
      return handle(url);
    })
    .catch(async (err: unknown) => {
      await stop();
      throw err;
    });
}

/**
 * The core file node `to-file` on tab `tab`, appending each msg.payload to `file` as a line: how a
 * flow in a Node-RED process of its own tells a test what came out (read it with jsonLines).
 */
export function fileRecorder(file: string): Record<string, unknown> {
  return {
    id: 'to-file',
    type: 'file',
    z: 'tab',
    filename: file,
    filenameType: 'str',
    appendNewline: true,
    createDir: true,
    overwriteFile: 'false',
    encoding: 'utf8',
    wires: [],
  };
}

/** A GET against the admin API; the answer as text. */
export async function adminRequest(
  nodeRed: NodeRedProcess,
  route: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const response = await fetch(new URL(route, nodeRed.url), { headers });
  return { status: response.status, text: await response.text() };
}

/** An admin API access token for a user of credentialsAuth (asserts that the login succeeds). */
export async function adminToken(
  nodeRed: NodeRedProcess,
  username: string,
  password: string,
  scope = '*',
): Promise<string> {
  const res = await fetch(`${nodeRed.base}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope, username, password }),
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { access_token: string }).access_token;
}

export function removeDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
