/** The public API of the M2M client (no Node-RED in here). */
export { M2MClient, DEFAULT_TIMEOUTS, DEFAULT_MAX_CONCURRENT_UPLOADS } from './client';
export { readCertificate, loadCertificate, assertCertificateCurrent, daysLeft } from './certificate';
export {
  validateOrganisationsnummer,
  validateReferensperiod,
  validatePathValue,
  validateUploadRequest,
  type PathField,
} from './validation';
export { DEFAULT_RETRY } from './retry';
export * from './errors';
// Of the SCB assumptions (lib/api.ts) only what a caller of the client meets: the shapes in its
// options and results, the defaults of `classify` and `segmentsSurviveSessionRenewal`, the
// segment size behind UploadProgress, and the reading of a history record. The rest stays internal.
export {
  SEGMENT_SIZE,
  SEGMENTS_SURVIVE_SESSION_RENEWAL,
  classifyHistory,
  historyMessages,
  type ApiVersion,
  type Environment,
  type ScbStatus,
  type UploadPathParts,
} from './api';
export type * from './types';
