/**
 * The nodes' lines in the Node-RED log: info once per upload and once per decision, debug per
 * segment and per poll, so that an info log reads as a list of deliveries. English, as are the
 * client's own lines in the same log (lib/ has no message catalog); the editor's texts are the
 * ones translated.
 */
import type { ScbStatus } from '../../lib/api';
import type { UploadProgress, UploadRequest, UploadResult } from '../../lib/types';

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export const logLine = {
  uploaded(request: UploadRequest, result: UploadResult): string {
    const target = [request.organisationsnummer, request.undersokning, request.referensperiod, request.filformat]
      .filter(Boolean)
      .join(' ');
    const retries = result.retries > 0 ? `, ${plural(result.retries, 'retry', 'retries')}` : '';
    return `Uploaded ${request.filnamn} (${target}; ${plural(result.bytes, 'byte', 'bytes')} in ${plural(result.segments, 'segment', 'segments')}${retries}): uploadId ${result.uploadId}`;
  },
  segment(request: UploadRequest, p: UploadProgress): string {
    return `${request.filnamn}: segment ${p.segment} of ${p.segments} sent (${p.bytesSent} of ${p.totalBytes} bytes)`;
  },
  /** A history answer for one upload: info once SCB decided, debug while it is pending. */
  history(uploadId: string, status: ScbStatus): string {
    return status === 'pending' ? `Upload ${uploadId}: still pending at SCB` : `Upload ${uploadId}: ${status} by SCB`;
  },
};
