/**
 * A Node-RED user directory with this package in it, as `npm start` (scripts/start.ts) and the
 * tests (test/helpers/node-red-process.ts) prepare one: settings.js, a package.json, and this
 * repository linked into its node_modules (how an installed package looks to Node-RED 4 and 5;
 * no npm install runs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const REPO = path.join(__dirname, '..');
export const PACKAGE_NAME = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string })
  .name;

/** What every Node-RED of ours runs with: on 127.0.0.1 only, no telemetry, tours or projects, info logging. */
export const BASE_SETTINGS = {
  uiHost: '127.0.0.1',
  flowFile: 'flows.json',
  editorTheme: { tours: false, projects: { enabled: false } },
  telemetry: { enabled: false, updateNotification: false },
  logging: { console: { level: 'info', metrics: false, audit: false } },
};

/** Writes `<userDir>/settings.js` exporting `settings` (JSON-able), after `comment` lines; returns its path. */
export function writeSettings(userDir: string, settings: Record<string, unknown>, comment: string[] = []): string {
  const file = path.join(userDir, 'settings.js');
  const header = comment.map((line) => `// ${line}\n`).join('');
  // Only the owner reads it: it holds the credential secret.
  fs.writeFileSync(file, `${header}module.exports = ${JSON.stringify(settings, null, 4)};\n`, { mode: 0o600 });
  return file;
}

/** Writes `<userDir>/package.json` (with it, `npm install` installs into the user dir). */
export function writeManifest(userDir: string, manifest: Record<string, unknown>): void {
  fs.writeFileSync(path.join(userDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/**
 * Links this repository into `<userDir>/node_modules`. A link elsewhere is replaced; a package
 * installed there (a directory, e.g. from a tarball) is kept or replaced as `installed` says.
 */
export function linkPackage(userDir: string, installed: 'keep' | 'replace'): void {
  const link = path.join(userDir, 'node_modules', ...PACKAGE_NAME.split('/'));
  fs.mkdirSync(path.dirname(link), { recursive: true });
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(link);
  } catch {
    stat = undefined;
  }
  if (stat?.isSymbolicLink() && path.resolve(path.dirname(link), fs.readlinkSync(link)) === REPO) return;
  if (stat && !stat.isSymbolicLink() && installed === 'keep') return;
  fs.rmSync(link, { recursive: true, force: true });
  // A junction needs no rights on Windows; elsewhere the type is ignored.
  fs.symlinkSync(REPO, link, 'junction');
}
