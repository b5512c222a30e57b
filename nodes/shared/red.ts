/**
 * The slice of Node-RED's runtime API that our nodes use. Node-RED ships no typings and
 * `@types/node-red` is not a dependency, so these few interfaces stand in for them.
 */

export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  [key: string]: unknown;
}

export type StatusFill = 'red' | 'green' | 'yellow' | 'blue' | 'grey';
export interface NodeStatus {
  fill?: StatusFill;
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFunction = (msg: NodeMessage | Array<NodeMessage | null>) => void;
export type DoneFunction = (err?: Error) => void;

export interface ContextStore {
  get(key: string, store: string | undefined, callback: (err: Error | null, value: unknown) => void): void;
}

/** A node instance, as `RED.nodes.createNode` makes it. */
export interface Node {
  readonly id: string;
  readonly type: string;
  readonly name?: string;
  readonly z?: string;
  credentials?: Record<string, string | undefined>;
  on(event: 'input', listener: (msg: NodeMessage, send: SendFunction, done: DoneFunction) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  status(status: NodeStatus | Record<string, never>): void;
  /** Sends outside an input handler (work resumed at start). */
  send(msg: NodeMessage | Array<NodeMessage | null>): void;
  log(message: unknown): void;
  debug(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown, msg?: NodeMessage): void;
}

/** What the editor saved for a node (its `defaults`). */
export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
  [key: string]: unknown;
}

/** Express's request and response, as far as the admin endpoints use them. */
export interface AdminRequest {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body?: unknown;
}
export interface AdminResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
  set(name: string, value: string): AdminResponse;
  send(body: string): void;
}
export type AdminHandler = (req: AdminRequest, res: AdminResponse, next: () => void) => void;

export interface NodeAPI {
  nodes: {
    createNode(node: Node, def: NodeDef): void;
    registerType(
      type: string,
      constructor: (this: never, def: never) => void,
      options?: { credentials?: Record<string, { type: 'text' | 'password' }>; settings?: Record<string, { value: unknown; exportable?: boolean }> },
    ): void;
    getNode(id: string): Node | null;
    getCredentials(id: string): Record<string, string | undefined> | undefined;
  };
  util: {
    evaluateNodeProperty(
      value: string,
      type: string,
      node: Node,
      msg: NodeMessage,
      callback: (err: Error | null, value: unknown) => void,
    ): void;
    prepareJSONataExpression(expression: string, node: Node): unknown;
    evaluateJSONataExpression(
      expression: unknown,
      context: unknown,
      callback: (err: Error | null, value: unknown) => void,
    ): void;
  };
  httpAdmin: {
    get(path: string, ...handlers: AdminHandler[]): void;
    post(path: string, ...handlers: AdminHandler[]): void;
  };
  auth: { needsPermission(permission: string): AdminHandler };
  /** The runtime's events: `flows:started` once every node of a (re)deploy or start is running. */
  events: {
    on(event: string, listener: (...args: unknown[]) => void): void;
    removeListener(event: string, listener: (...args: unknown[]) => void): void;
  };
  settings: { fileWorkingDirectory?: string; userDir?: string; [name: string]: unknown };
  _(key: string, substitutions?: Record<string, unknown>): string;
}

/** What a plugin (plugins/) gets besides the nodes' API: its registration and the editor's comms. */
export interface PluginAPI extends NodeAPI {
  plugins: { registerPlugin(id: string, definition: { type?: string; onadd?: () => void }): void };
  comms: { publish(topic: string, data: unknown, retain?: boolean): void };
}
