/** A folder given as a TypedInput (str, env, msg, flow, global), as the history and outbox nodes take one. */
import * as path from 'node:path';
import { ValidationError } from '../../lib';
import type { Node, NodeAPI, NodeMessage } from './red';

/**
 * The folder's absolute path (relative to settings.js `fileWorkingDirectory`, as the core file
 * nodes resolve theirs), or undefined when it evaluates to nothing. Not text: INVALID_FOLDER
 * naming the node's `field`.
 */
export async function folderOf(
  RED: NodeAPI,
  node: Node,
  { value, type, field }: { value?: string; type?: string; field: string },
  msg: NodeMessage = {},
): Promise<string | undefined> {
  if (!value) return undefined;
  const dir = await new Promise<unknown>((resolve, reject) =>
    RED.util.evaluateNodeProperty(value, type || 'str', node, msg, (err, v) => (err ? reject(err) : resolve(v))),
  );
  if (dir === undefined || dir === null || dir === '') return undefined;
  if (typeof dir !== 'string') {
    throw new ValidationError(RED._(`${node.type}.errors.bad-folder`, { field, type: typeof dir }), {
      code: 'INVALID_FOLDER',
      field,
    });
  }
  return path.resolve(RED.settings.fileWorkingDirectory ?? process.cwd(), dir);
}
