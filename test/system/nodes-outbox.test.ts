import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CONFIG,
  TAB,
  baseFlow,
  credentialsOf,
  helper,
  lastStatus,
  load,
  messages,
  nodeSuite,
  uploadNode,
  within,
  type FlowNode,
} from '../helpers/node-red';

describe('scb-m2m-outbox node', function () {
  this.timeout(30_000);
  const ctx = nodeSuite({ tmpDir: 'scb-outbox-node-' });
  let outbox: string;
  beforeEach(() => {
    outbox = fs.mkdtempSync(path.join(ctx.dir, 'outbox-'));
  });

  /** outbox `box` → helper `listed` (and → upload `up` → helper `sent` when `upload`); catch → `caught`. */
  function outboxFlow(props: Record<string, unknown> = {}, upload = false): FlowNode[] {
    return [
      ...baseFlow(ctx.simulator, { organisationsnummer: '9990000045', undersokning: 'VINN' }),
      {
        id: 'box',
        type: 'scb-m2m-outbox',
        z: TAB,
        config: CONFIG,
        folder: outbox,
        folderType: 'str',
        ...props,
        wires: [upload ? ['listed', 'up'] : ['listed']],
      },
      { id: 'listed', type: 'helper', z: TAB },
      ...(upload ? [uploadNode([['sent']]), { id: 'sent', type: 'helper', z: TAB }] : []),
    ];
  }

  /** Resolves once the outbox node has set its status again: a listing ended (what it sent is on its way). */
  function listed(): Promise<void> {
    return within(
      new Promise<void>((resolve) => helper.getNode('box').on('call:status', () => resolve())),
      5000,
      'a listing',
    );
  }

  it('sends each file waiting when the flow starts, as the watch node would; then leaves it alone once on record', async () => {
    const file = path.join(outbox, 'V40_waiting.xml');
    fs.writeFileSync(file, '<Report/>\n');
    fs.writeFileSync(path.join(outbox, '.V40_hidden.xml'), 'x');
    await load(outboxFlow({}, true), credentialsOf(ctx.simulator));
    const first = messages('listed', 1);
    const delivered = messages('sent', 1);
    const [msg] = await within(first, 5000, 'the waiting file');
    const { payload, topic, filename, file: name, size, type } = msg;
    assert.deepEqual(
      { payload, topic, filename, name, size, type },
      { payload: file, topic: file, filename: file, name: 'V40_waiting.xml', size: 10, type: 'file' },
    );
    assert.deepEqual(lastStatus(helper.getNode('box')), {
      fill: 'grey',
      shape: 'dot',
      text: 'scb-m2m-outbox.status.listed',
    });
    await within(delivered, 10_000, 'the upload of the waiting file');

    // Any msg lists again: the uploaded file is on record now, so only a file saved since goes out.
    const next = messages('listed', 1);
    const relisted = listed();
    helper.getNode('box').receive({});
    await relisted;
    assert.deepEqual(lastStatus(helper.getNode('box')), {
      fill: 'grey',
      shape: 'dot',
      text: 'scb-m2m-outbox.status.listed',
    });
    const later = path.join(outbox, 'V40_later.xml');
    fs.writeFileSync(later, '<Report n="later"/>\n');
    helper.getNode('box').receive({});
    assert.equal(
      (await within(next, 5000, 'the next file listed'))[0].filename,
      later,
      'the file on record was not sent',
    );
  });

  it('a folder it cannot read goes to the Catch node with FOLDER_UNREADABLE, at start and on a msg', async () => {
    const missing = path.join(outbox, 'missing');
    await load(outboxFlow({ folder: missing }), credentialsOf(ctx.simulator));
    const caught = messages('caught', 2);
    helper.getNode('box').receive({ topic: 'again' });
    const errors = await within(caught, 5000, 'two failures at the catch node');
    for (const msg of errors) {
      const scbError = msg.scbError as { code: string; message: string; hint: string };
      assert.equal(scbError.code, 'FOLDER_UNREADABLE');
      assert.match(scbError.message, new RegExp(`${missing}.*ENOENT`));
      assert.match(scbError.hint, /Create the folder/);
    }
    assert.equal(errors.filter((m) => m.topic === 'again').length, 1, 'the msg that asked is the one reported');
    assert.equal(lastStatus(helper.getNode('box'))?.fill, 'red');
  });
});
