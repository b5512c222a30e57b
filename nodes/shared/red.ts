/**
 * Node-RED's runtime API as the nodes and the plugin use it: the types of `@types/node-red`
 * (and Express's for the admin routes), plus what those types do not name.
 */
import type { Request, Response, NextFunction } from 'express';
import type { NodeMessage } from 'node-red';
import type { ConfigSettings } from '../scb-m2m-config/model';

export type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from 'node-red';

export type SendFunction = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type DoneFunction = (err?: Error) => void;

export type AdminRequest = Request;
export type AdminResponse = Response;
export type AdminHandler = (req: Request, res: Response, next: NextFunction) => void;

declare module '@node-red/registry' {
  interface NodeAPIPlugins {
    /** A plugin without a type (ours only adds to the editor) is what Node-RED accepts; the types want one. */
    registerPlugin(id: string, definition: { onadd?: () => void }): void;
  }
}

declare module '@node-red/runtime' {
  /**
   * Our settings.js entries. The journal's and the history node's are read (and checked) where
   * they are used; Node-RED's settings declaration takes only names that start with the node
   * type (scbM2mConfig...), which these do not.
   */
  interface LocalSettings extends Partial<ConfigSettings> {
    /** Node-RED's own, missing from its types: the folder relative file paths start from. */
    fileWorkingDirectory?: string;
    scbM2mJournalDir?: unknown;
    scbM2mJournalRetentionDays?: unknown;
    scbM2mJournalSync?: unknown;
    scbM2mUnknownUploadGraceMs?: unknown;
  }
}
