/**
 * The delivery journal's record: one per file sent to SCB, with every change of its state.
 * Knows nothing of Node-RED; the nodes fill in the node and msg parts.
 */
import type { ScbStatus, UploadPathParts } from '../api';
import type { ErrorCode, TransportCode } from '../errors';

/**
 * queued → sending (segment k of n) → closing (the closing request is on its way) → sent
 * (SCB gave an uploadId) → accepted | rejected | pending (still undecided when the poll timed out).
 * Or: failed (an error before or while sending), interrupted (stopped by a redeploy, restart or
 * crash before the closing request; resumed when its node starts again), uncertain (the closing
 * request went out and no answer came: never sent again blindly).
 */
export type DeliveryState =
  | 'queued'
  | 'sending'
  | 'closing'
  | 'sent'
  | 'accepted'
  | 'rejected'
  | 'pending'
  | 'failed'
  | 'interrupted'
  | 'uncertain';

export const DELIVERY_STATES: readonly DeliveryState[] = [
  'queued',
  'sending',
  'closing',
  'sent',
  'accepted',
  'rejected',
  'pending',
  'failed',
  'interrupted',
  'uncertain',
];

/** Not yet closed at SCB: a process that stops now leaves these to be resumed or judged. */
export const IN_FLIGHT: readonly DeliveryState[] = ['queued', 'sending', 'closing'];

/** Where the file is (or may be) at SCB: another upload of the same content to the same target would double it. */
export const AT_SCB: readonly DeliveryState[] = [
  'queued',
  'sending',
  'closing',
  'sent',
  'pending',
  'accepted',
  'uncertain',
];

/** Where a file goes: the URL's parts and the name SCB sees. */
export type DeliveryTarget = Required<Pick<UploadPathParts, 'organisationsnummer' | 'undersokning' | 'filformat'>> &
  Pick<UploadPathParts, 'referensperiod' | 'version'> & { filnamn: string };

/** A file on disk (checked unchanged before a resume) or bytes kept in the journal's spool while in flight. */
export type DeliverySource =
  { kind: 'path'; path: string; size: number; mtimeMs: number } | { kind: 'memory'; encoding: 'buffer' | 'utf8' };

/** The flow node that sent it (or polls it). */
export interface DeliveryNodeRef {
  id: string;
  type: string;
  name?: string;
  /** The flow (tab) it is on. */
  z?: string;
}

/** An error as the journal keeps it: never a secret. */
export interface DeliveryError {
  kind: string;
  code: ErrorCode | TransportCode;
  message: string;
  hint?: string;
  statusCode?: number;
}

/** SCB's decision, as the history node (or "check now") read it. */
export interface DeliveryDecision {
  status: ScbStatus;
  /** SCB's JSON for this upload. */
  body: unknown;
  /** SCB's messages (for a rejection: the reasons), in SCB's words. */
  messages: string[];
  /** ISO time the decision was read. */
  at: string;
}

/** A history poll that survives a restart: the node that polls, until when, and the msg it answers with. */
export interface DeliveryPoll {
  nodeId: string;
  /** Epoch milliseconds. */
  deadline: number;
  msg: Record<string, unknown>;
}

/** One change of state, as it happened. */
export interface DeliveryChange {
  state: DeliveryState;
  /** ISO time. */
  at: string;
  segment?: number;
  segments?: number;
  uploadId?: string;
  error?: DeliveryError;
  /** Why, in words (a resume, a resend, a redeploy). */
  note?: string;
}

export interface DeliveryRecord {
  /** The journal's own id of this delivery (not SCB's). */
  id: string;
  /** The scb-m2m-config node whose journal holds it. */
  configId: string;
  /** ISO times. */
  createdAt: string;
  updatedAt: string;
  /** Where it goes; absent for an upload only polled here (sent elsewhere). */
  target?: DeliveryTarget;
  environment?: string;
  /** The API root it was sent to. */
  server?: string;
  source?: DeliverySource;
  size?: number;
  /** SHA-256 of the content, lower-case hex. */
  sha256?: string;
  /** The storable part of the msg (no http req/res; no payload when the payload is the file). */
  msg?: Record<string, unknown>;
  node?: DeliveryNodeRef;
  state: DeliveryState;
  /** While sending: the last data segment sent (1-based) and how many there are. */
  segment?: number;
  segments?: number;
  /** SCB's deliveryId (v2) or upload id (v1). */
  uploadId?: string;
  timeStamp?: string;
  /** Sent although it matched an earlier delivery (msg.resend): that delivery's journal id. */
  resendOf?: string;
  decision?: DeliveryDecision;
  error?: DeliveryError;
  /** An open history poll; gone once it is decided or timed out. */
  poll?: DeliveryPoll;
  changes: DeliveryChange[];
}

/** What a change sets: the state (recorded in `changes`) and the fields that come with it. */
export type DeliveryUpdate = Partial<
  Omit<DeliveryRecord, 'id' | 'configId' | 'createdAt' | 'updatedAt' | 'changes'>
> & {
  note?: string;
};

export interface DeliveryQuery {
  state?: DeliveryState | readonly DeliveryState[];
  /** Changed at or after this time. */
  since?: Date;
  limit?: number;
}
