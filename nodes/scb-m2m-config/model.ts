/**
 * What the flow nodes see of an `scb-m2m-config` node, and the certificate / client set-up
 * that the config node runs at deploy and its admin endpoints run before a deploy (one code
 * path for both, so the dialog shows exactly what a deploy will do).
 */
import { promises as fs } from 'node:fs';
import {
  M2MClient,
  DEFAULT_MAX_CONCURRENT_UPLOADS,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
  readCertificate,
  assertCertificateCurrent,
  daysLeft,
  CertificateError,
  ValidationError,
} from '../../lib';
import type { ApiVersion, Environment } from '../../lib/api';
import type {
  CertificateInfo,
  LoadedCertificate,
  M2MClientOptions,
  RetryOptions,
  TimeoutOptions,
} from '../../lib/types';
import type { NodeSettings } from 'node-red';
import { errorOf } from '../shared/journal';
import type { Node, NodeAPI, NodeStatus } from '../shared/red';

export const CONFIG_TYPE = 'scb-m2m-config';
/** What Node-RED's editor sends for a password credential it did not change. */
export const PASSWORD_PLACEHOLDER = '__PWRD__';
export const DEFAULT_EXPIRY_WARNING_DAYS = 30;

/**
 * The Node-RED settings (settings.js) of this node type, declared with it as core's tls-config
 * declares its own, for whoever needs other bounds than the client's defaults (the values here).
 * Not exportable: the editor has no use for them.
 */
export const CONFIG_SETTINGS: NodeSettings<ConfigSettings> = {
  scbM2mConfigTimeouts: { value: DEFAULT_TIMEOUTS, exportable: false },
  scbM2mConfigRetry: { value: DEFAULT_RETRY, exportable: false },
  scbM2mConfigMaxConcurrentUploads: { value: DEFAULT_MAX_CONCURRENT_UPLOADS, exportable: false },
};

export interface ConfigSettings {
  scbM2mConfigTimeouts: TimeoutOptions;
  scbM2mConfigRetry: RetryOptions;
  scbM2mConfigMaxConcurrentUploads: number;
}

export interface ConnectionSettings {
  environment: Environment;
  baseUrl: string;
  apiVersion: ApiVersion;
  certPath: string;
  caPath: string;
  expiryWarningDays: number;
}

export interface CertificateCredentials {
  /** base64 of a .pfx uploaded in the editor. */
  pfx?: string;
  passphrase?: string;
}

/** The answer of the certificate endpoints, and what a deployed config node knows of its certificate. */
export type CertificateReport =
  { ok: true; certificate: CertificateInfo; warning?: string } | { ok: false; error: ErrorReport };

export interface ErrorReport {
  kind: string;
  code: string;
  message: string;
  statusCode?: number;
}

export interface ScbM2mConfigNode extends Node<CertificateCredentials> {
  readonly organisationsnummer: string;
  readonly undersokning: string;
  readonly environment: Environment;
  /** The client of this deployment; rejects with the certificate problem found at deploy. */
  acquireClient(): Promise<M2MClient>;
  certificateReport(): Promise<CertificateReport>;
  /** Flow nodes that use this config node; they show its certificate problems as their status. */
  register(user: Node): void;
  deregister(user: Node): void;
  /** A short status (red ring) that names what went wrong, in the config node's catalog. */
  statusFor(err: unknown): NodeStatus;
}

export function findConfigNode(RED: NodeAPI, id: unknown): ScbM2mConfigNode | null {
  if (typeof id !== 'string' || id === '') return null;
  const node = RED.nodes.getNode(id);
  return node && node.type === CONFIG_TYPE ? (node as ScbM2mConfigNode) : null;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}

/** Settings from a node definition or an admin request body (both come from the same dialog). */
export function connectionSettings(raw: Partial<Record<keyof ConnectionSettings, unknown>>): ConnectionSettings {
  const environment = text(raw.environment);
  const days = Number(raw.expiryWarningDays);
  return {
    environment: environment === 'test' || environment === 'custom' ? environment : 'production',
    baseUrl: text(raw.baseUrl),
    apiVersion: text(raw.apiVersion) === 'v1' ? 'v1' : 'v2',
    certPath: text(raw.certPath),
    caPath: text(raw.caPath),
    expiryWarningDays:
      raw.expiryWarningDays !== '' && Number.isFinite(days) && days >= 0 ? days : DEFAULT_EXPIRY_WARNING_DAYS,
  };
}

/** A value typed in the dialog wins; the placeholder (or nothing) means "the one deployed". */
export function credentialsFor(
  given: CertificateCredentials,
  deployed: CertificateCredentials | undefined,
): CertificateCredentials {
  const pick = (value: string | undefined, fallback: string | undefined) =>
    value === undefined || value === PASSWORD_PLACEHOLDER ? fallback : value;
  return { pfx: pick(given.pfx, deployed?.pfx), passphrase: pick(given.passphrase, deployed?.passphrase) };
}

/** Decodes the certificate the settings point at: certPath first, else the uploaded .pfx. */
export async function loadConfiguredCertificate(
  RED: NodeAPI,
  settings: ConnectionSettings,
  credentials: CertificateCredentials,
): Promise<LoadedCertificate> {
  const passphrase = credentials.passphrase ?? '';
  if (settings.certPath) return readCertificate({ path: settings.certPath, passphrase });
  if (credentials.pfx) return readCertificate({ pfx: Buffer.from(credentials.pfx, 'base64'), passphrase });
  throw new CertificateError(RED._('scb-m2m-config.errors.no-certificate'), { code: 'NO_CERTIFICATE_CONFIGURED' });
}

/** Throws when the certificate is expired or not yet valid; a warning text when it expires soon. */
export function certificateWarning(
  RED: NodeAPI,
  info: CertificateInfo,
  warningDays: number,
  now = new Date(),
): string | undefined {
  assertCertificateCurrent(info, now);
  return info.daysLeft <= warningDays
    ? RED._('scb-m2m-config.warnings.expires-soon', { days: info.daysLeft, validTo: info.validTo })
    : undefined;
}

/** A certificate that was read and checked, and the warning when it expires soon. */
export interface InspectedCertificate {
  certificate: LoadedCertificate;
  warning?: string;
}

/** Decodes and checks the certificate; everything the dialog and a deploy need to know. */
export async function inspectCertificate(
  RED: NodeAPI,
  settings: ConnectionSettings,
  credentials: CertificateCredentials,
): Promise<InspectedCertificate> {
  const certificate = await loadConfiguredCertificate(RED, settings, credentials);
  return { certificate, warning: certificateWarning(RED, certificate.info, settings.expiryWarningDays) };
}

/** The certificate endpoints' answer for a certificate that was read; never its key. Days left as of now, not of the deploy. */
export function certificateAnswer({ certificate, warning }: InspectedCertificate): CertificateReport {
  const info = { ...certificate.info, daysLeft: daysLeft(certificate.info.validTo) };
  return { ok: true, certificate: info, ...(warning && { warning }) };
}

export async function createClient(
  RED: NodeAPI,
  settings: ConnectionSettings,
  certificate: LoadedCertificate,
  log?: M2MClientOptions['log'],
): Promise<M2MClient> {
  let ca: Buffer | undefined;
  if (settings.caPath) {
    try {
      ca = await fs.readFile(settings.caPath);
    } catch (err) {
      throw new ValidationError(
        RED._('scb-m2m-config.errors.ca-unreadable', {
          path: settings.caPath,
          reason: (err as NodeJS.ErrnoException).code ?? String(err),
        }),
        { code: 'CA_UNREADABLE', field: 'caPath', value: settings.caPath },
      );
    }
  }
  return new M2MClient({
    environment: settings.environment,
    baseUrl: settings.environment === 'custom' ? settings.baseUrl : undefined,
    apiVersion: settings.apiVersion,
    certificate,
    ca,
    log,
    // Unset: undefined, and the client uses its default.
    timeouts: RED.settings.scbM2mConfigTimeouts,
    retry: RED.settings.scbM2mConfigRetry,
    maxConcurrentUploads: RED.settings.scbM2mConfigMaxConcurrentUploads,
  });
}

/** An error for the editor's dialogs and the log: as msg.scbError has it, with the hint in the message. */
export function errorReport(err: unknown): ErrorReport {
  const { hint: _hint, ...report } = errorOf(err);
  return { ...report, message: err instanceof Error ? err.message : report.message };
}
