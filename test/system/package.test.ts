/**
 * What users get from npm: the packed file list, the tarball installed with plain
 * `npm install <tgz>` into a fresh Node-RED user dir and loaded by a real Node-RED, and the
 * rules of `node-red-dev validate` that need no network (the tool itself stops at its first
 * check against catalogue.nodered.org, which is unreachable here).
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as acorn from 'acorn';
import * as walk from 'acorn-walk';
import {
  adminRequest,
  makeUserDir,
  NODE_TYPES,
  nodeRedVersion,
  PACKAGE_NAME,
  removeDir,
  REPO,
  startNodeRed,
  type NodeRedProcess,
} from '../helpers/node-red-process';

const run = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface PackageJson {
  name: string;
  license?: string;
  keywords?: string[];
  repository?: unknown;
  bugs?: unknown;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  'node-red': { version?: string; nodes: Record<string, string>; plugins?: Record<string, string> };
}
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as PackageJson;

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run(NPM, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** What `npm pack` puts in the tarball (the build already ran: `npm test` builds first). */
async function packedFiles(): Promise<string[]> {
  const [report] = JSON.parse(await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], REPO)) as Array<{
    files: Array<{ path: string }>;
  }>;
  return report.files.map((file) => file.path).sort();
}

describe('package: what npm publishes', function () {
  this.timeout(180_000);

  describe('the packed file list', () => {
    let files: string[];
    before(async () => {
      files = await packedFiles();
    });

    it('holds only what a user needs', () => {
      const allowed = [
        /^(README\.md|LICENSE|package\.json)$/,
        /^lib\/([\w-]+\/)?[\w-]+\.js$/,
        /^simulator\/[\w-]+\.js$/,
        /^nodes\/[\w-]+\/[\w-]+\.(js|html)$/,
        /^nodes\/[\w-]+\/locales\/(en-US|sv)\/[\w-]+\.(json|html)$/,
        /^nodes\/[\w-]+\/icons\/[\w-]+\.svg$/,
        /^plugins\/[\w-]+\/[\w-]+\.(js|html)$/,
        /^plugins\/[\w-]+\/locales\/(en-US|sv)\/[\w-]+\.json$/,
        /^icons\/[\w-]+\.svg$/,
        /^examples\/[\w' -]+\.json$/,
      ];
      const unexpected = files.filter((file) => !allowed.some((pattern) => pattern.test(file)));
      assert.deepEqual(unexpected, [], 'files a user does not need are packed');
    });

    it('leaves out tests, TypeScript sources, certificates, the benchmark and CI', () => {
      const forbidden = /^(test|bench|\.ci|scripts|docs)\/|\.ts$|\.(pfx|p12|key|pem|tgz)$/;
      assert.deepEqual(
        files.filter((file) => forbidden.test(file)),
        [],
      );
    });

    it('holds every node (runtime, editor, both languages, icon), the sidebar plugin, the client, the simulator and the examples', () => {
      const required = [
        'README.md',
        'LICENSE',
        'package.json',
        'lib/index.js',
        'simulator/index.js',
        'simulator/cli.js',
      ];
      for (const [type, runtime] of Object.entries(pkg['node-red'].nodes)) {
        const dir = path.posix.dirname(runtime);
        required.push(runtime, `${dir}/${type}.html`);
        // Each flow node has an icon of its own; the config node none.
        if (type !== 'scb-m2m-config') required.push(`${dir}/icons/${type}.svg`);
        for (const lang of ['en-US', 'sv'])
          required.push(`${dir}/locales/${lang}/${type}.json`, `${dir}/locales/${lang}/${type}.html`);
      }
      for (const [name, runtime] of Object.entries(pkg['node-red'].plugins ?? {})) {
        const dir = path.posix.dirname(runtime);
        required.push(runtime, `${dir}/${name}.html`);
        for (const lang of ['en-US', 'sv']) required.push(`${dir}/locales/${lang}/${name}.json`);
      }
      for (const example of fs.readdirSync(path.join(REPO, 'examples'))) required.push(`examples/${example}`);
      assert.deepEqual(
        required.filter((file) => !files.includes(file)),
        [],
        'files missing from the package',
      );
    });
  });

  describe('the tarball in a fresh Node-RED', () => {
    let work: string;
    let userDir: string;
    let nodeRed: NodeRedProcess | undefined;

    before(async () => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-m2m-pack-'));
      const [packed] = JSON.parse(
        await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], REPO),
      ) as Array<{ filename: string }>;
      userDir = makeUserDir('scb-m2m-installed-');
      // Plain npm install of the tarball, as from the registry (dependencies come from there).
      await npm(['install', '--no-audit', '--no-fund', '--omit=dev', path.join(work, packed.filename)], userDir);
      nodeRed = await startNodeRed(userDir);
    });

    after(async () => {
      await nodeRed?.stop();
      removeDir(userDir);
      removeDir(work);
    });

    it('installs with plain `npm install <tgz>` as a real package, not a link', () => {
      const installed = path.join(userDir, 'node_modules', ...PACKAGE_NAME.split('/'));
      assert.equal(fs.lstatSync(installed).isSymbolicLink(), false);
      for (const dependency of Object.keys(pkg.dependencies ?? {})) {
        assert.ok(
          fs.existsSync(path.join(userDir, 'node_modules', dependency, 'package.json')),
          `${dependency} was installed with it`,
        );
      }
    });

    it(`Node-RED loads the four node types from it`, async () => {
      assert.ok(nodeRed);
      const answer = await adminRequest(nodeRed, 'nodes', { Accept: 'application/json' });
      assert.equal(answer.status, 200);
      const sets = (
        JSON.parse(answer.text) as Array<{ module: string; types: string[]; enabled: boolean; err?: string }>
      ).filter((set) => set.module === PACKAGE_NAME);
      assert.deepEqual(sets.map((set) => set.err).filter(Boolean), [], 'node sets that failed to load');
      assert.ok(sets.every((set) => set.enabled));
      assert.deepEqual(sets.flatMap((set) => set.types).sort(), [...NODE_TYPES].sort());
      assert.ok(
        !/Error loading|failed to load|Waiting for missing types/i.test(nodeRed.output()),
        `Node-RED's log shows a problem:\n${nodeRed.output()}`,
      );
    });

    it('Node-RED loads the SCB sidebar plugin from it, with its editor part and both catalogs', async () => {
      assert.ok(nodeRed);
      assert.deepEqual(Object.keys(pkg['node-red'].plugins ?? {}), ['scb-m2m-deliveries']);
      const answer = await adminRequest(nodeRed, 'plugins', { Accept: 'application/json' });
      assert.equal(answer.status, 200);
      const sets = (
        JSON.parse(answer.text) as Array<{
          module: string;
          plugins: Array<{ id: string }>;
          enabled: boolean;
          err?: string;
        }>
      ).filter((set) => set.module === PACKAGE_NAME);
      assert.deepEqual(sets.map((set) => set.err).filter(Boolean), [], 'plugin sets that failed to load');
      assert.deepEqual(
        sets.flatMap((set) => set.plugins.map((plugin) => plugin.id)),
        ['scb-m2m-deliveries'],
      );
      const editor = await adminRequest(nodeRed, 'plugins', { Accept: 'text/html' });
      assert.match(editor.text, /RED\.sidebar\.addTab/);
      const namespace = `${PACKAGE_NAME}/scb-m2m-deliveries`;
      for (const lng of ['en-US', 'sv']) {
        const catalogs = JSON.parse((await adminRequest(nodeRed, `plugins/messages?lng=${lng}`)).text) as Record<
          string,
          { 'scb-m2m-deliveries': { sidebar: { label: string; name: string } } }
        >;
        assert.equal(
          catalogs[namespace]?.['scb-m2m-deliveries'].sidebar.name,
          lng === 'sv' ? 'SCB-leveranser' : 'SCB deliveries',
        );
      }
    });
  });

  describe('node-red-dev validate: the rules it checks without the network', () => {
    it('P01: the package has a license (and ships its text)', () => {
      assert.ok(pkg.license, 'package.json "license"');
      assert.ok(fs.existsSync(path.join(REPO, 'LICENSE')));
    });

    it('P03: it names a repository or a bugs address', () => {
      assert.ok(pkg.repository ?? pkg.bugs);
    });

    it('P04: it uses a scoped name', () => {
      // node-red-dev's own pattern.
      assert.match(pkg.name, /@[a-z\d][\w-.]+\/[a-z\d][\w-.]*/);
    });

    it('P05: its keywords hold "node-red"', () => {
      assert.ok(pkg.keywords?.includes('node-red'));
    });

    it('P06/P07 (offline part): it declares the Node-RED and Node versions it needs, and the tested Node-RED satisfies them', () => {
      const semver = require('semver') as { satisfies(version: string, range: string): boolean };
      assert.ok(pkg['node-red'].version, 'package.json "node-red.version"');
      assert.ok(
        semver.satisfies(nodeRedVersion(), pkg['node-red'].version),
        `Node-RED ${nodeRedVersion()} is not in ${pkg['node-red'].version}`,
      );
      assert.ok(pkg.engines?.node, 'package.json "engines.node"');
      assert.ok(
        semver.satisfies(process.versions.node, pkg.engines.node),
        `Node ${process.versions.node} is not in ${pkg.engines.node}`,
      );
    });

    it('D01: it has at most 6 dependencies', () => {
      assert.ok(Object.keys(pkg.dependencies ?? {}).length <= 6);
    });

    /** Each node's .html parsed the way node-red-dev does: registerType('<literal>', {<inline literal object>}). */
    function definitions(): Record<string, Record<string, unknown>> {
      const defs: Record<string, Record<string, unknown>> = {};
      for (const runtime of Object.values(pkg['node-red'].nodes)) {
        const html = fs.readFileSync(path.join(REPO, runtime.replace(/\.js$/, '.html')), 'utf8');
        const scripts = [...html.matchAll(/<script.+?type=['"]text\/javascript['"].*?>([\S\s]*?)<\/script>/gi)].map(
          (match) => match[1],
        );
        assert.ok(scripts.length > 0, `${runtime}: no <script type="text/javascript"> in its .html`);
        for (const script of scripts) {
          walk.simple(acorn.parse(script, { ecmaVersion: 'latest' }), {
            CallExpression(call) {
              const callee = call.callee;
              if (
                callee.type !== 'MemberExpression' ||
                callee.property.type !== 'Identifier' ||
                callee.property.name !== 'registerType'
              )
                return;
              const [type, def] = call.arguments;
              assert.ok(
                type.type === 'Literal' && typeof type.value === 'string',
                `${runtime}: registerType's type must be a string literal`,
              );
              assert.ok(
                def.type === 'ObjectExpression',
                `${runtime}: registerType's definition must be an inline object`,
              );
              const found: Record<string, unknown> = {};
              for (const property of def.properties) {
                if (property.type !== 'Property' || property.key.type !== 'Identifier') continue;
                const key = property.key.name;
                if (key === 'defaults' || key === 'credentials') {
                  assert.equal(property.value.type, 'ObjectExpression', `${type.value}: ${key} must be inline`);
                  found[key] = true;
                } else if (['icon', 'color', 'inputs', 'outputs', 'category'].includes(key)) {
                  assert.equal(property.value.type, 'Literal', `${type.value}: ${key} must be a literal`);
                  found[key] = (property.value as acorn.Literal).value;
                }
              }
              defs[type.value] = found;
            },
          });
        }
      }
      return defs;
    }

    it('node definitions: each .html registers its type inline, with a literal category', () => {
      const defs = definitions();
      assert.deepEqual(Object.keys(defs).sort(), [...NODE_TYPES].sort());
      for (const [type, def] of Object.entries(defs)) {
        assert.equal(def.category, type === 'scb-m2m-config' ? 'config' : 'SCB M2M', `${type}: category`);
        assert.equal(def.defaults, true, `${type}: defaults`);
      }
    });

    it('N02: every node type except the config node is used in an example', () => {
      const used = new Set<string>();
      for (const file of fs.readdirSync(path.join(REPO, 'examples'), { recursive: true, encoding: 'utf8' })) {
        if (!file.endsWith('.json')) continue;
        for (const node of JSON.parse(fs.readFileSync(path.join(REPO, 'examples', file), 'utf8')) as Array<{
          type: string;
        }>)
          used.add(node.type);
      }
      const defs = definitions();
      const missing = Object.keys(defs).filter((type) => defs[type].category !== 'config' && !used.has(type));
      assert.deepEqual(missing, []);
    });
  });
});
