/**
 * scb-m2m-outbox: the files already waiting in a folder, listed when the flow starts and on each
 * msg. A folder watch sees only files saved while it runs; this finds the ones saved while
 * Node-RED was stopped, or just before a deploy. Files the delivery journal knows as they are
 * (same path, size and time: sent, in flight, rejected, failed...) are left alone, so a restart
 * sends nothing twice and a rejected file is sent again only once it is saved again.
 */
import { filesIn } from '../../lib/outbox';
import { ValidationError } from '../../lib';
import type { DoneFunction, Node, NodeAPI, NodeDef, NodeMessage, SendFunction } from '../shared/red';
import { findConfigNode } from '../scb-m2m-config/model';
import { folderOf } from '../shared/folder';
import { failures } from '../shared/flow-node';
import { journalFor } from '../shared/journal';

interface OutboxDef extends NodeDef {
  config?: string;
  folder?: string;
  folderType?: string;
  /** Its subfolders too (as the core watch node's "recursive"). */
  recursive?: boolean;
}

/** As the core inject node's "inject once": the first listing once the flows have started. */
const FIRST_LISTING_MS = 100;

export = function (RED: NodeAPI): void {
  function ScbM2mOutboxNode(this: Node, def: OutboxDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = findConfigNode(RED, def.config);
    // Not registered with the config node: its certificate's standing is not this node's.
    const { noConfig, noConfigStatus, failed } = failures(RED, node, config);
    if (!config) node.status(noConfigStatus());

    /** Sends one msg per waiting file the journal does not know, shaped as the core watch node's. */
    async function list(msg: NodeMessage, send: SendFunction): Promise<void> {
      if (!config) throw noConfig();
      const dir = await folderOf(RED, node, { value: def.folder, type: def.folderType, field: 'folder' }, msg);
      if (!dir) {
        throw new ValidationError(RED._('scb-m2m-outbox.errors.no-folder'), {
          code: 'INVALID_FOLDER',
          field: 'folder',
        });
      }
      const journal = await journalFor(RED, config.id);
      const waiting = await filesIn(dir, { recursive: def.recursive === true });
      const unsent = waiting.filter((file) => !journal.knows(file));
      for (const file of unsent) {
        send({
          payload: file.path,
          topic: file.path,
          filename: file.path,
          file: file.name,
          size: file.size,
          type: 'file',
        });
      }
      const counts = { unsent: unsent.length, known: waiting.length - unsent.length, folder: dir };
      node.log(RED._('scb-m2m-outbox.log.listed', counts));
      node.status({ fill: 'grey', shape: 'dot', text: RED._('scb-m2m-outbox.status.listed', counts) });
    }

    const first = setTimeout(() => {
      const msg: NodeMessage = {};
      list(msg, (m) => node.send(m)).catch((err: unknown) => node.error(failed(msg, err), msg));
    }, FIRST_LISTING_MS);

    node.on('input', (msg: NodeMessage, send: SendFunction, done: DoneFunction) => {
      list(msg, send).then(
        () => done(),
        (err: unknown) => done(failed(msg, err)),
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearTimeout(first);
      done();
    });
  }
  RED.nodes.registerType('scb-m2m-outbox', ScbM2mOutboxNode);
};
