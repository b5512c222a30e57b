/**
 * Fuzz: thousands of generated values (seeded; the seed is printed) at every msg override of the
 * upload node and at msg.uploadId of the history node, one msg at a time through the real nodes
 * and a live simulator. No crash; each msg ends exactly once; a value that is plainly invalid
 * sends no request and its error names the field; a value that goes out reaches the server as
 * given (normalised), never coerced ("[object Object]", "NaN").
 */
import * as assert from 'node:assert/strict';
import { startSimulator } from '../../simulator';
import type { Simulator, SimulatorDelivery } from '../../simulator/types';
import type { NodeMessage } from 'node-red';
import { REQUEST } from '../helpers/client';
import { Outcomes, seededRandom, testSeed } from '../helpers/faults';
import { CONFIG, TAB, baseFlow, credentialsOf, helper, load, historyNode } from '../helpers/node-red';

const FIELDS = ['organisationsnummer', 'undersokning', 'referensperiod', 'filformat', 'version', 'filnamn'] as const;
type Field = (typeof FIELDS)[number];
const VALUES_PER_FIELD = 500;
const UPLOAD_IDS = 500;
/** What the node has configured: an empty or missing msg field falls back to these. */
const NODE_VALUES: Record<Field, string> = { ...REQUEST, version: '7', filnamn: 'fallback.xml' };
const VALID: Record<Field, unknown[]> = {
  organisationsnummer: ['9990000045', '999000-0045', 9990000045, ' 9990000045 '],
  undersokning: ['VINN', 'KRITA', ' VINN '],
  referensperiod: ['2022-06-30', '2024-02-29', '2026-12-31'],
  filformat: ['V40', 'V10', 'KRITA_MONTHLY', 'Å-format'],
  version: ['1', 3, '12', 'v2'],
  filnamn: ['a.xml', 'VINN 2026-06.xml', 'räkenskaper.xml', 'x'.repeat(255)],
};

/** Values of every kind a flow could put in a msg property. */
function generator(random: () => number): () => unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const chars = [
    'a',
    'Z',
    '0',
    '9',
    '-',
    '_',
    '.',
    ' ',
    '/',
    '\\',
    '?',
    '#',
    '%',
    '\u0000',
    '\u0007',
    '\n',
    '\t',
    '\u007f',
    'å',
    'Ö',
    '€',
    '😀',
    '\u202e',
    '"',
    "'",
    '<',
    '&',
  ];
  const text = (max: number) => Array.from({ length: Math.floor(random() * max) }, () => pick(chars)).join('');
  const kinds: Array<() => unknown> = [
    () => text(12),
    () => text(40),
    () =>
      pick([
        '',
        ' ',
        '\t',
        '.',
        '..',
        '/',
        '../etc/passwd',
        '%2F',
        'a/b',
        'a\\b',
        'a?b',
        'a#b',
        'null',
        'undefined',
        'NaN',
      ]),
    () => 'x'.repeat(256 + Math.floor(random() * 100_000)),
    () => pick([0, -1, 1.5, 2 ** 53, -0, 1e21, NaN, Infinity, -Infinity, Number.MAX_VALUE]),
    () => Math.floor(random() * 1e10),
    () => pick([true, false, null, undefined]),
    () =>
      pick([
        {},
        { value: 'VINN' },
        [],
        ['VINN'],
        [1, 2],
        new Date(),
        new Date(NaN),
        Buffer.from('V40'),
        /V40/,
        () => 'V40',
        Symbol('x'),
        10n,
      ]),
    () =>
      `${Math.floor(random() * 3000)}-${String(Math.floor(random() * 14)).padStart(2, '0')}-${String(Math.floor(random() * 33)).padStart(2, '0')}`,
    () => String(Math.floor(random() * 1e10)).padStart(10, '0'),
  ];
  return () => pick(kinds)();
}

/** Plainly invalid, whatever the field: must be refused before any request. */
function mustRefuse(field: Field, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'number') return !Number.isFinite(value);
  if (typeof value !== 'string') return true;
  const text = value.trim();
  if (text === '') return false;
  if (field === 'organisationsnummer') return !/^\d{6}-?\d{4}$/.test(text);
  if (field === 'referensperiod') return !/^\d{4}-\d{2}-\d{2}$/.test(text);
  return text.length > 255 || /[/\\?#\u0000-\u001f\u007f]/.test(text) || text === '.' || text === '..';
}

/** What the server must have received for `value` when the upload went out. */
function onTheWire(field: Field, value: unknown): string {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  if (text === '') return NODE_VALUES[field];
  return field === 'organisationsnummer' ? text.replace('-', '') : text;
}

const show = (v: unknown) =>
  typeof v === 'string'
    ? JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…(${v.length})` : v)
    : typeof v === 'bigint' || typeof v === 'symbol' || typeof v === 'function'
      ? String(v)
      : Number.isNaN(v)
        ? 'NaN'
        : (JSON.stringify(v) ?? String(v));

describe('fuzz: generated values at every msg override and at msg.uploadId', function () {
  this.timeout(60_000);
  let simulator: Simulator;

  before(async () => {
    simulator = await startSimulator({
      clients: [{ name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'] }],
      keepFiles: false,
    });
  });
  after(async () => {
    await helper.unload();
    await simulator.stop();
  });

  /** The error a node reported with done(err) for `msg` (the Catch node only gets its text). */
  function errorFor(nodeId: string, msg: NodeMessage): { message: string; field?: string; statusCode?: number } {
    const call = helper
      .getNode(nodeId)
      .error.getCalls()
      .find((c) => (c.args[1] as NodeMessage | undefined)?._msgid === msg._msgid);
    assert.ok(call, `done(err) for ${String(msg._msgid)}`);
    return call.args[0] as { message: string; field?: string; statusCode?: number };
  }

  it(`upload node: ${VALUES_PER_FIELD} values at each of ${FIELDS.length} fields (plus valid ones)`, async () => {
    const random = seededRandom(testSeed('fuzz upload'));
    const next = generator(random);
    await load(
      [
        ...baseFlow(simulator),
        {
          id: 'up',
          type: 'scb-m2m-upload',
          z: TAB,
          config: CONFIG,
          ...Object.fromEntries(
            FIELDS.filter((f) => f !== 'filnamn').flatMap((f) => [
              [f, NODE_VALUES[f]],
              [`${f}Type`, 'str'],
            ]),
          ),
          wires: [['out']],
        },
        { id: 'out', type: 'helper', z: TAB },
      ],
      credentialsOf(simulator),
    );
    const outcomes = new Outcomes('fuzzId');
    outcomes.listen(['out'], 'caught');
    const problems: string[] = [];
    const tally = { sent: 0, refused: 0, refusedByServer: 0 };
    let n = 0;
    for (const field of FIELDS) {
      const values = [...Array.from({ length: VALUES_PER_FIELD }, next), ...VALID[field]];
      for (const value of values) {
        const fuzzId = `f${n++}`;
        // Content of its own: the same file twice to one target would be refused as a duplicate.
        const msg: NodeMessage = { _msgid: fuzzId, fuzzId, payload: Buffer.from(`<v n="${fuzzId}"/>`), [field]: value };
        if (field !== 'filnamn') msg.filnamn = NODE_VALUES.filnamn;
        const requests = simulator.stats().requests;
        const deliveries = simulator.deliveries().length;
        helper.getNode('up').receive(msg);
        await outcomes.ended(fuzzId);
        const what = `${field} = ${show(value)}`;
        const output = outcomes.outputs.get(fuzzId)?.[0];
        if (output) {
          tally.sent++;
          const delivery = simulator.deliveries().find((d) => d.deliveryId === output.uploadId) as
            SimulatorDelivery | undefined;
          const wire = delivery?.[field];
          if (mustRefuse(field, value)) problems.push(`${what}: sent, but it is invalid`);
          else if (wire !== onTheWire(field, value))
            problems.push(`${what}: the server got ${show(wire)}, expected ${show(onTheWire(field, value))}`);
          continue;
        }
        const err = errorFor('up', outcomes.caught.get(fuzzId)![0]);
        if (simulator.stats().requests === requests) {
          tally.refused++;
          if (err.field !== field && !err.message.includes(field))
            problems.push(`${what}: the error does not name the field: ${err.message} (field ${String(err.field)})`);
        } else {
          // A value the client let through and the server refused: only allowed for valid-looking values.
          tally.refusedByServer++;
          if (mustRefuse(field, value))
            problems.push(`${what}: a request was sent for an invalid value (${err.message})`);
          if (err.statusCode === undefined)
            problems.push(`${what}: requests went out but the error has no statusCode: ${err.message}`);
        }
        if (simulator.deliveries().length !== deliveries)
          problems.push(`${what}: a Catch, yet the server has a new delivery`);
      }
    }
    console.log(
      `      ${n} msgs: ${tally.sent} sent, ${tally.refused} refused before any request, ${tally.refusedByServer} refused by the server (401 for a survey the certificate lacks)`,
    );
    await helper.unload();
    outcomes.assertEachEndedOnce(Array.from({ length: n }, (_, i) => `f${i}`));
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
    assert.ok(tally.sent >= FIELDS.length && tally.refused > n / 2, JSON.stringify(tally));
  });

  it(`history node: ${UPLOAD_IDS} values at msg.uploadId`, async () => {
    const random = seededRandom(testSeed('fuzz history'));
    const next = generator(random);
    await load(
      [...baseFlow(simulator), historyNode({}, [['out'], ['out'], ['out']]), { id: 'out', type: 'helper', z: TAB }],
      credentialsOf(simulator),
    );
    const outcomes = new Outcomes('fuzzId');
    outcomes.listen(['out'], 'caught');
    const problems: string[] = [];
    const values = [...Array.from({ length: UPLOAD_IDS }, next), '3f2504e0-4f89-11d3-9a0c-0305e82c3301'];
    for (const [i, value] of values.entries()) {
      const fuzzId = `h${i}`;
      const msg: NodeMessage = { _msgid: fuzzId, fuzzId, uploadId: value };
      const requests = simulator.stats().requests;
      helper.getNode('hist').receive(msg);
      await outcomes.ended(fuzzId);
      const invalid = value !== undefined && value !== null && (typeof value !== 'string' || value.trim() === '');
      if (!invalid) continue;
      if (outcomes.outputs.has(fuzzId)) problems.push(`uploadId = ${show(value)}: answered, but it is invalid`);
      else if (simulator.stats().requests !== requests) problems.push(`uploadId = ${show(value)}: a request was sent`);
      else if (
        !errorFor('hist', outcomes.caught.get(fuzzId)![0]).message.includes('uploadId') &&
        errorFor('hist', msg).field !== 'uploadId'
      ) {
        problems.push(`uploadId = ${show(value)}: the error does not name uploadId`);
      }
    }
    await helper.unload();
    outcomes.assertEachEndedOnce(values.map((_, i) => `h${i}`));
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
  });
});
