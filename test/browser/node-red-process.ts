/**
 * A real Node-RED in its own process, as a user runs it: `node red.js -u <userDir> -p 0`, with
 * this package in the user dir's node_modules (linked, or installed from a tarball by the
 * caller). Used by the browser, i18n and package tests. Which Node-RED: the dev dependency, or
 * the package directory in SCB_M2M_NODE_RED (scripts/test-node-red-5.sh points it at Node-RED 5).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO = path.join(__dirname, '..', '..');
export const PACKAGE_NAME = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string }).name;
/** The four node types package.json declares. */
export const NODE_TYPES = Object.keys(
  (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } })['node-red'].nodes,
);

/** The Node-RED package directory the tests run against. */
export function nodeRedDir(): string {
  return process.env.SCB_M2M_NODE_RED ?? path.dirname(require.resolve('node-red/package.json'));
}

export function nodeRedVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(nodeRedDir(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** A fresh user dir with a settings file: 127.0.0.1 only, no telemetry or tours, a credential secret. */
export function makeUserDir(prefix = 'scb-m2m-node-red-'): string {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const settings = {
    uiHost: '127.0.0.1',
    flowFile: 'flows.json',
    credentialSecret: crypto.randomBytes(16).toString('hex'),
    editorTheme: { tours: false, projects: { enabled: false } },
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
  };
  fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  fs.writeFileSync(path.join(userDir, 'package.json'), `${JSON.stringify({ name: 'scb-m2m-test-user-dir', private: true }, null, 2)}\n`);
  return userDir;
}

/** Links this repository into the user dir as an installed package (how `npm start` does it too). */
export function linkPackage(userDir: string): void {
  const link = path.join(userDir, 'node_modules', ...PACKAGE_NAME.split('/'));
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.symlinkSync(REPO, link, 'junction');
}

export interface NodeRedProcess {
  /** e.g. http://127.0.0.1:41234/ */
  readonly url: string;
  readonly userDir: string;
  /** Everything Node-RED wrote to stdout and stderr so far. */
  output(): string;
  /** Stops Node-RED and waits for its exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment for Node-RED (e.g. where an example flow watches). */
  env?: Record<string, string>;
  /** How long to wait for "Server now running" (default 30 s). */
  timeoutMs?: number;
}

/** Starts Node-RED on a free port and resolves once it listens; rejects with its output if it exits or hangs. */
export function startNodeRed(userDir: string, options: StartOptions = {}): Promise<NodeRedProcess> {
  const child = spawn(process.execPath, [path.join(nodeRedDir(), 'red.js'), '--userDir', userDir, '--port', '0'], {
    cwd: userDir,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle = (url: string): NodeRedProcess => ({
    url,
    userDir,
    output: () => output,
    stop: () => stopChild(child, exited),
  });
  return new Promise<NodeRedProcess>((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const timer = setTimeout(() => fail(`did not start listening within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      void stopChild(child, exited).then(() => reject(new Error(`Node-RED ${why}. Its output:\n${output}`)));
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // "Server now running at http://127.0.0.1:<port>/": the port Node-RED chose for -p 0.
      const running = /now running at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
      if (running) {
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        resolve(handle(running[1]));
      }
    };
    const onExit = (code: number | null) => fail(`exited with code ${code} before listening`);
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', onExit);
    child.once('error', (err) => fail(`could not be started (${err.message})`));
  });
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    // Node-RED stops its flows on SIGTERM; a hung one is killed after 10 s.
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** A GET against the admin API; the answer as text. */
export async function adminRequest(nodeRed: NodeRedProcess, route: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(new URL(route, nodeRed.url), { headers });
  return { status: response.status, text: await response.text() };
}

export function removeDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
