/**
 * A simulator process as the flows and curl reach it, and the same v2 upload as the upload
 * node's done with curl.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { CLOSING_SEGMENT, HEARTBEAT_PATH, apiRoot, v2SegmentPath, type UploadPathParts } from '../lib/api';
import { readCertificate } from '../lib';
import { REPORTER } from './options';
import type { FlowSettings } from './protocol';
import { type CurlRun, type SimulatorProcess, runCurl } from './runner';

interface CurlTls {
  certPem: string;
  keyPem: string;
  caPath: string;
}

/** A simulator process and what the flows and curl need to reach it. */
export interface Target {
  url: string;
  tlsFiles: CurlTls;
  settings: FlowSettings;
  /** The closing segment's content for curl. */
  emptyFile: string;
  /** curl's cookie jar and receipt go here. */
  work: string;
}

export async function prepareTarget(sim: SimulatorProcess, work: string): Promise<Target> {
  await fs.mkdir(work, { recursive: true });
  // PEM copies of the .pfx for curl and the core tls-config node; the key file is the owner's only.
  const certificate = await readCertificate({ path: sim.certPath, passphrase: sim.passphrase });
  const certPem = path.join(work, 'client-cert.pem');
  const keyPem = path.join(work, 'client-key.pem');
  await fs.writeFile(certPem, certificate.cert, { mode: 0o600 });
  await fs.writeFile(keyPem, certificate.key, { mode: 0o600 });
  const emptyFile = path.join(work, 'empty');
  await fs.writeFile(emptyFile, '');
  const { url, certPath, passphrase, caPath } = sim;
  return {
    url,
    tlsFiles: { certPem, keyPem, caPath },
    settings: { baseUrl: url, certPath, passphrase, caPath, certPem, keyPem, ...REPORTER },
    emptyFile,
    work,
  };
}

export function segmentUrl(base: string, segment: number, filnamn: string): string {
  const parts: UploadPathParts = { ...REPORTER, filnamn };
  return apiRoot(base, 'v2') + v2SegmentPath(segment, parts);
}

/**
 * The same v2 upload with curl: a heartbeat into a cookie jar (not timed, as the flow's session is
 * already up when it is measured), then ONE curl process sending every segment and the closing
 * POST over one keep-alive connection (`--next`), timed from its start to its exit.
 */
export async function curlUpload(target: Target, segments: string[], filnamn: string, cpus?: string): Promise<CurlRun> {
  const { url: base, tlsFiles, emptyFile, work } = target;
  const tlsArgs = ['--cert', tlsFiles.certPem, '--key', tlsFiles.keyPem, '--cacert', tlsFiles.caPath, '-sS'];
  const jar = path.join(work, 'cookies.txt');
  const heartbeatUrl = apiRoot(base, 'v2') + HEARTBEAT_PATH;
  const beat = await runCurl([...tlsArgs, '-c', jar, '-o', '/dev/null', '-w', '%{http_code}', heartbeatUrl], cpus);
  if (beat.stdout !== '200') throw new Error(`curl heartbeat answered ${beat.stdout}`);
  const receipt = path.join(work, 'receipt.json');
  const parts = [
    ...segments.map((file, k) => ({ file, k, out: '/dev/null' })),
    { file: emptyFile, k: CLOSING_SEGMENT, out: receipt },
  ];
  const args = parts.flatMap(({ file, k, out }, i) => [
    ...(i > 0 ? ['--next'] : []),
    ...tlsArgs,
    '-b',
    jar,
    // Without this curl waits for "100 Continue" before each segment's body.
    '-H',
    'Expect:',
    '-o',
    out,
    '-w',
    '%{http_code}\n',
    '-F',
    `File=@${file};filename=${filnamn}`,
    segmentUrl(base, k, filnamn),
  ]);
  const { ms, cpuMs, stdout } = await runCurl(args, cpus);
  const codes = stdout.trim().split('\n');
  if (codes.length !== parts.length || codes.some((c) => c !== '200')) {
    throw new Error(`curl upload answered ${codes.join(',')}`);
  }
  const deliveryId = /"deliveryId"\s*:\s*"([^"]+)"/i.exec(await fs.readFile(receipt, 'utf8'))?.[1];
  if (!deliveryId) throw new Error('curl upload: the closing segment answered no deliveryId');
  return { ms, cpuMs };
}
