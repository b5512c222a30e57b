/** The client's options, checked once: a bad one is a ValidationError naming the field and the fix. */
import {
  ENVIRONMENT_ORIGINS,
  SEGMENTS_SURVIVE_SESSION_RENEWAL,
  apiRoot as apiRootOf,
  type ApiVersion,
  type Environment,
} from './api';
import { ValidationError } from './errors';
import { retryPolicy, type RetryPolicy } from './retry';
import { describeValue } from './validation';
import type { CertificateSource, LoadedCertificate, M2MClientOptions, TimeoutOptions } from './types';

export const DEFAULT_TIMEOUTS: Required<TimeoutOptions> = {
  connectMs: 10_000,
  requestMs: 600_000,
  shortRequestMs: 60_000,
};
export const DEFAULT_MAX_CONCURRENT_UPLOADS = 4;

/** The options as the client's parts use them. */
export interface ClientSettings {
  options: M2MClientOptions & { certificate: LoadedCertificate };
  certificate: LoadedCertificate;
  apiVersion: ApiVersion;
  /** e.g. `https://m2m.gdb.scb.se/m2m/v2/`. */
  apiRoot: string;
  host: string;
  timeouts: Required<TimeoutOptions>;
  retry: RetryPolicy;
  maxUploads: number;
  log: Log;
}

export type Log = (level: 'debug' | 'warn', message: string) => void;

/** What the client counts for stats(), shared by its parts. */
export interface Counters {
  heartbeats: number;
  requests: number;
  retries: number;
  sessionRenewals: number;
  connections: number;
}

export function isLoadedCertificate(c: LoadedCertificate | CertificateSource): c is LoadedCertificate {
  return (
    typeof (c as LoadedCertificate).cert === 'string' &&
    typeof (c as LoadedCertificate).key === 'string' &&
    typeof (c as LoadedCertificate).info === 'object'
  );
}

export function optionError(field: string, value: unknown, rule: string, hint: string): ValidationError {
  return new ValidationError(`Client option ${field} ${describeValue(value)} is not valid: ${rule}.`, {
    code: 'INVALID_OPTION',
    field,
    value,
    hint,
  });
}

/** Checks every option (not ca and proxy: the transport checks those as it uses them). */
export function resolveOptions(options: M2MClientOptions): ClientSettings {
  if (!options || typeof options !== 'object')
    throw optionError('options', options, 'they must be an object', 'Give at least the certificate.');
  const { certificate } = options;
  if (!certificate || !isLoadedCertificate(certificate)) {
    throw optionError(
      'certificate',
      certificate,
      'it must be a decoded certificate',
      'Decode it with readCertificate(), or use `await M2MClient.create(options)` which reads a path or .pfx bytes.',
    );
  }
  const environment = options.environment ?? 'production';
  if (!['production', 'test', 'custom'].includes(environment)) {
    throw optionError(
      'environment',
      environment,
      'it must be "production", "test" or "custom"',
      'Pick one of the three.',
    );
  }
  const apiVersion = options.apiVersion ?? 'v2';
  if (apiVersion !== 'v1' && apiVersion !== 'v2')
    throw optionError('apiVersion', apiVersion, 'it must be "v1" or "v2"', 'Use v2 unless SCB told you otherwise.');
  const apiRoot = resolveRoot(environment, options.baseUrl, apiVersion);
  const timeouts = resolveTimeouts(options.timeouts);
  let retry: RetryPolicy;
  try {
    retry = retryPolicy(options.retry);
  } catch (err) {
    throw optionError('retry', options.retry, (err as Error).message, 'Give counts and milliseconds of 0 or more.');
  }
  const survive = options.segmentsSurviveSessionRenewal;
  if (survive !== undefined && typeof survive !== 'boolean') {
    throw optionError(
      'segmentsSurviveSessionRenewal',
      survive,
      'it must be true or false',
      `Leave it out for the assumed ${SEGMENTS_SURVIVE_SESSION_RENEWAL}.`,
    );
  }
  const maxUploads = options.maxConcurrentUploads ?? DEFAULT_MAX_CONCURRENT_UPLOADS;
  if (!Number.isInteger(maxUploads) || maxUploads < 1)
    throw optionError(
      'maxConcurrentUploads',
      maxUploads,
      'it must be a whole number of 1 or more',
      'Leave it out for 4.',
    );
  const log: Log = (level, message) => {
    try {
      options.log?.(level, message);
    } catch {
      // A failing logger must not break a delivery.
    }
  };
  return {
    options: { ...options, certificate },
    certificate,
    apiVersion,
    apiRoot,
    host: new URL(apiRoot).host,
    timeouts,
    retry,
    maxUploads,
    log,
  };
}

function resolveRoot(environment: Environment, baseUrl: string | undefined, apiVersion: ApiVersion): string {
  if (environment !== 'custom') {
    if (baseUrl !== undefined)
      throw optionError(
        'baseUrl',
        baseUrl,
        'it is only used with environment "custom"',
        'Set environment to "custom" or leave baseUrl out.',
      );
    return apiRootOf(ENVIRONMENT_ORIGINS[environment], apiVersion);
  }
  let url: URL;
  try {
    url = new URL(String(baseUrl));
  } catch {
    throw optionError(
      'baseUrl',
      baseUrl,
      'it must be a URL',
      'Give the server\'s origin, e.g. "https://127.0.0.1:8443/".',
    );
  }
  if (url.protocol !== 'https:')
    throw optionError(
      'baseUrl',
      baseUrl,
      'it must start with https://',
      'The M2M API is only reachable over TLS; use https.',
    );
  if (url.username || url.password || url.search || url.hash) {
    throw optionError(
      'baseUrl',
      baseUrl,
      'it must not carry credentials, a query or a fragment',
      'Give only the origin and an optional path prefix.',
    );
  }
  return apiRootOf(url.href, apiVersion);
}

function resolveTimeouts(given: TimeoutOptions = {}): Required<TimeoutOptions> {
  const out = { ...DEFAULT_TIMEOUTS };
  for (const key of Object.keys(DEFAULT_TIMEOUTS) as Array<keyof TimeoutOptions>) {
    const value = given[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
      throw optionError(
        `timeouts.${key}`,
        value,
        'it must be a positive number of milliseconds',
        `Leave it out for the default of ${DEFAULT_TIMEOUTS[key]} ms.`,
      );
    }
    out[key] = value;
  }
  return out;
}
