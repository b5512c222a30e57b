/**
 * English and Swedish: every message catalog has the same keys (and the same __placeholders__)
 * in both languages, every help text has Node-RED's standard sections, and a real Node-RED
 * serves the Swedish help and messages to a Swedish editor.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { DELIVERY_STATES } from '../../lib/journal/types';
import { launchChromium, skipWithoutChromium } from './browser/chromium';
import {
  adminRequest,
  makeUserDir,
  NODE_TYPES,
  PACKAGE_NAME,
  removeDir,
  REPO,
  startNodeRed,
  type NodeRedProcess,
} from '../helpers/node-red-process';

const LANGUAGES = ['en-US', 'sv'] as const;
type Language = (typeof LANGUAGES)[number];

/** Node-RED's help layout: a flow node documents its messages, a config node its properties. */
const SECTIONS: Record<Language, { flow: string[]; config: string[] }> = {
  'en-US': { flow: ['Inputs', 'Outputs', 'Details', 'References'], config: ['Properties', 'Details', 'References'] },
  sv: { flow: ['Indata', 'Utdata', 'Detaljer', 'Referenser'], config: ['Egenskaper', 'Detaljer', 'Referenser'] },
};

/** Texts that read the same in both languages: SCB's own Swedish terms, codes and examples. */
const SAME_IN_BOTH =
  /^(Organisationsnr|Undersökning|Referensperiod|Filformat|Version|Server|heartbeat|Test \([\w.]+\)|https:\/\/[^ ]+|\/[\w/.-]+\.pfx|SCB|CSV|SHA-256|test)$/;

/** The editor plugins (plugins/<name>), each with its catalog like a node's. */
const PLUGINS = fs.readdirSync(path.join(REPO, 'plugins'));

function localeFile(type: string, language: Language, extension: 'json' | 'html'): string {
  return path.join(
    REPO,
    PLUGINS.includes(type) ? 'plugins' : 'nodes',
    type,
    'locales',
    language,
    `${type}.${extension}`,
  );
}

function catalog(type: string, language: Language): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(localeFile(type, language, 'json'), 'utf8')) as Record<string, unknown>;
}

/** Every leaf of a catalog by its dotted key. */
function leaves(value: unknown, prefix = ''): Map<string, unknown> {
  const found = new Map<string, unknown>();
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value))
      for (const [k, v] of leaves(child, prefix ? `${prefix}.${key}` : key)) found.set(k, v);
  } else {
    found.set(prefix, value);
  }
  return found;
}

const placeholders = (text: string) => [...text.matchAll(/__(\w+)__/g)].map((match) => match[1]).sort();

function help(type: string, language: Language): string {
  return fs.readFileSync(localeFile(type, language, 'html'), 'utf8');
}

/** The help's first paragraph, the one-line summary Node-RED shows in the palette tooltip. */
function summary(html: string): string {
  const match = /data-help-name="[^"]+">\s*<p>([\s\S]*?)<\/p>/.exec(html);
  assert.ok(match, 'the help starts with a <p> summary');
  return match[1].replace(/\s+/g, ' ').trim();
}

const isConfig = (type: string) => type === 'scb-m2m-config';

describe('i18n: English and Swedish', () => {
  describe('message catalogs', () => {
    for (const type of [...NODE_TYPES, ...PLUGINS]) {
      it(`${type}: the same keys in en-US and sv, each a translated text with the same placeholders`, () => {
        const english = leaves(catalog(type, 'en-US'));
        const swedish = leaves(catalog(type, 'sv'));
        assert.deepEqual([...swedish.keys()].sort(), [...english.keys()].sort());
        for (const [key, text] of swedish) {
          assert.equal(typeof text, 'string', `${key} is text`);
          assert.notEqual(text, '', `${key} is not empty`);
          assert.deepEqual(
            placeholders(text as string),
            placeholders(english.get(key) as string),
            `${key}: the same __placeholders__`,
          );
        }
        const untranslated = [...swedish]
          .filter(([key, text]) => text === english.get(key) && !SAME_IN_BOTH.test(text as string))
          .map(([key]) => key);
        assert.deepEqual(untranslated, [], 'texts still in English');
      });
    }
  });

  describe('keys used by the nodes', () => {
    /** Literal keys: RED._('…'), node._('…'), this._('…') in the runtime and editor, data-i18n="…" in the edit templates. */
    function usedKeys(type: string): string[] {
      const dir = path.join(REPO, 'nodes', type);
      const files = fs.readdirSync(dir).filter((file) => file.endsWith('.ts') || file === `${type}.html`);
      const sources = files.map((file) => fs.readFileSync(path.join(dir, file), 'utf8'));
      const keys = new Set<string>();
      for (const text of sources) {
        for (const match of text.matchAll(/\b(?:RED|node|this)\._\(\s*['"]([^'"]+)['"]\s*[,)]/g)) keys.add(match[1]);
        for (const match of text.matchAll(/data-i18n="(?:\[\w+\])?([^"]+)"/g)) keys.add(match[1]);
      }
      return [...keys];
    }

    /** The sidebar's keys: t('…') in its .html (under scb-m2m-deliveries.sidebar.) and RED._('…') in its runtime. */
    it('scb-m2m-deliveries (plugin): every literal key in its .ts and .html is in the en-US and sv catalogs', () => {
      const dir = path.join(REPO, 'plugins', 'scb-m2m-deliveries');
      const html = fs.readFileSync(path.join(dir, 'scb-m2m-deliveries.html'), 'utf8');
      const runtime = fs.readFileSync(path.join(dir, 'deliveries.ts'), 'utf8');
      const keys = [
        ...[...html.matchAll(/\bt\(\s*'([^']+)'\s*[,)]/g)].map((match) => `scb-m2m-deliveries.sidebar.${match[1]}`),
        ...[...runtime.matchAll(/\bRED\._\(\s*'([^']+)'\s*[,)]/g)].map((match) => match[1]),
        // Built keys: a name for every state the journal knows.
        ...DELIVERY_STATES.map((state) => `scb-m2m-deliveries.sidebar.state.${state}`),
      ];
      assert.ok(keys.length > 20, `found ${keys.length} keys`);
      for (const language of LANGUAGES) {
        const known = leaves(catalog('scb-m2m-deliveries', language));
        assert.deepEqual(
          keys.filter((key) => !known.has(key)),
          [],
          `${language}: keys missing from the catalog`,
        );
      }
    });

    for (const type of NODE_TYPES) {
      it(`${type}: every literal key in its .ts and .html is in the en-US and sv catalogs`, () => {
        const keys = usedKeys(type);
        assert.ok(keys.length > 0);
        for (const language of LANGUAGES) {
          const known = leaves(catalog(type, language));
          assert.deepEqual(
            keys.filter((key) => !known.has(key)),
            [],
            `${language}: keys missing from the catalog`,
          );
        }
      });
    }
  });

  describe('help', () => {
    for (const type of NODE_TYPES) {
      for (const language of LANGUAGES) {
        it(`${type} (${language}): one help script with a summary and the standard sections`, () => {
          const html = help(type, language);
          const scripts = [...html.matchAll(/<script type="text\/html" data-help-name="([^"]+)">/g)].map(
            (match) => match[1],
          );
          assert.deepEqual(scripts, [type]);
          assert.ok(summary(html).length > 20, 'a one-line summary');
          const headings = [...html.matchAll(/<h3>([^<]*)<\/h3>/g)].map((match) => match[1].trim());
          assert.deepEqual(headings, SECTIONS[language][isConfig(type) ? 'config' : 'flow']);
          if (!isConfig(type))
            assert.ok(
              /<dl class="message-properties">/.test(html),
              'message properties in a <dl class="message-properties">',
            );
        });
      }

      it(`${type}: the Swedish help documents the same msg properties, outputs and links`, () => {
        const shape = (html: string) => ({
          // The first word of each <dt> is a msg property (payload, uploadId, ...): code, never translated.
          properties: [...html.matchAll(/<dt[^>]*>\s*([\w.,]+)/g)].map((match) => match[1]),
          outputs: (/<ol class="node-ports">([\s\S]*?)<\/ol>/.exec(html)?.[1].match(/<li>/g) ?? []).length,
          links: [...html.matchAll(/href="([^"]+)"/g)].map((match) => match[1]),
        });
        const english = shape(help(type, 'en-US'));
        const swedish = shape(help(type, 'sv'));
        // en-US "any message" is a description, not a property: compare properties only where English names one.
        assert.equal(swedish.properties.length, english.properties.length, 'as many <dt> entries');
        english.properties.forEach((name, i) => {
          if (/^[a-z][\w.,]*[A-Za-z]$/.test(name) && name !== 'any')
            assert.equal(swedish.properties[i], name, `<dt> ${i + 1}`);
        });
        assert.equal(swedish.outputs, english.outputs, 'as many outputs');
        assert.deepEqual(swedish.links, english.links);
      });
    }
  });

  describe('served by a real Node-RED', function () {
    this.timeout(60_000);
    let userDir: string;
    let nodeRed: NodeRedProcess | undefined;
    let browser: Browser | undefined;

    before(async () => {
      userDir = makeUserDir('scb-m2m-i18n-');
      nodeRed = await startNodeRed(userDir);
    });

    after(async () => {
      await browser?.close();
      await nodeRed?.stop();
      removeDir(userDir);
    });

    it("GET /nodes (the editor's node HTML) carries the Swedish help for Accept-Language: sv, the English one otherwise", async () => {
      assert.ok(nodeRed);
      const swedish = await adminRequest(nodeRed, 'nodes', { Accept: 'text/html', 'Accept-Language': 'sv' });
      const english = await adminRequest(nodeRed, 'nodes', { Accept: 'text/html', 'Accept-Language': 'en-US' });
      assert.equal(swedish.status, 200);
      assert.equal(english.status, 200);
      const flat = (text: string) => text.replace(/\s+/g, ' ');
      for (const type of NODE_TYPES) {
        const sv = summary(help(type, 'sv'));
        const en = summary(help(type, 'en-US'));
        assert.ok(flat(swedish.text).includes(sv), `${type}: the Swedish help is served to a Swedish editor`);
        assert.ok(!flat(swedish.text).includes(en), `${type}: and not the English one`);
        assert.ok(flat(english.text).includes(en), `${type}: the English help is served to an English editor`);
        assert.ok(!flat(english.text).includes(sv), `${type}: and not the Swedish one`);
      }
    });

    it('GET /locales/<node set>?lng=sv serves the Swedish messages', async () => {
      assert.ok(nodeRed);
      for (const type of NODE_TYPES) {
        const answer = await adminRequest(nodeRed, `locales/${PACKAGE_NAME}/${type}?lng=sv`);
        assert.equal(answer.status, 200);
        assert.deepEqual(JSON.parse(answer.text), catalog(type, 'sv'), `${type}: the sv catalog`);
      }
    });

    it("an editor in a Swedish browser shows the nodes' Swedish names in the palette", async function () {
      skipWithoutChromium(this);
      assert.ok(nodeRed);
      browser = await launchChromium();
      const page = await browser.newPage({ locale: 'sv-SE' });
      await page.goto(nodeRed.url);
      for (const type of NODE_TYPES.filter((t) => !isConfig(t))) {
        const label = (catalog(type, 'sv')[type] as { paletteLabel: string }).paletteLabel;
        const node = page.locator(`.red-ui-palette-node[data-palette-type="${type}"] .red-ui-palette-label`);
        assert.equal((await node.innerText()).trim(), label, `${type}'s palette label`);
      }
    });
  });
});
