/** The public API of the M2M client (no Node-RED in here). */
export { M2MClient, DEFAULT_TIMEOUTS, DEFAULT_MAX_CONCURRENT_UPLOADS } from './client';
export { readCertificate, loadCertificate, assertCertificateCurrent, daysLeft } from './certificate';
export { validateOrganisationsnummer, validateReferensperiod, validatePathValue, validateUploadRequest, type PathField } from './validation';
export { DEFAULT_RETRY } from './retry';
export * from './errors';
export * from './api';
export type * from './types';
