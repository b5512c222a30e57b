/**
 * A local SCB Indataportalen M2M server for tests, the benchmark and demos: real HTTPS with
 * client certificates on 127.0.0.1, the F5 session layer, v1/v2 uploads, history and faults,
 * behaving as ../../shared/reference/scb-m2m-api.md describes (assumptions from lib/api.ts).
 *
 * An untrusted, expired, not-yet-valid or revoked certificate completes the TLS handshake
 * and is then answered 401 with the reason (SCB checks it per request; a reason is more
 * useful to a test than a failed handshake). With clientCert 'renegotiate' the certificate is
 * asked for later, by TLS renegotiation, and one that does not verify is refused there.
 */
import { constants as cryptoConstants } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { SEGMENT_SIZE } from '../lib/api';
import { FaultQueue } from './faults';
import { DeliveryStore } from './history';
import { DEFAULT_CLIENTS, normaliseSerial } from './pki';
import { requestHandler, type ServerState } from './server';
import { SessionStore, type Session } from './sessions';
import { SimulatorState } from './state';
import type { Simulator, SimulatorCertificate, SimulatorOptions, SimulatorStats } from './types';
import type { PendingFile } from './uploads';

export * from './types';
export { DEFAULT_CLIENTS } from './pki';

/** Concurrent connections accepted; more are refused by the kernel backlog / closed. */
export const MAX_CONNECTIONS = 256;
const DEFAULT_HISTORY_DELAY_MS = 2000;
const DEFAULT_SESSION_IDLE_MS = 15 * 60_000;
/** Room for the multipart head and tail around a full segment. */
const MULTIPART_OVERHEAD = 64 * 1024;
/** Per request, as the reference client allows (30 minutes). */
const REQUEST_TIMEOUT_MS = 30 * 60_000;

function checkOption(name: string, value: number | undefined, min: number): void {
  if (value !== undefined && (!Number.isFinite(value) || value < min)) {
    throw new RangeError(`startSimulator: ${name} must be a number of ${min} or more, got ${value}`);
  }
}

function listen(server: https.Server, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  checkOption('port', options.port, 0);
  checkOption('historyDelayMs', options.historyDelayMs, 0);
  checkOption('unknownForMs', options.unknownForMs, 0);
  const historyShape = options.historyShape ?? 'camel';
  if (!['camel', 'pascal', 'rapporthuvud'].includes(historyShape)) {
    throw new RangeError(
      `startSimulator: historyShape must be 'camel', 'pascal' or 'rapporthuvud', got ${String(historyShape)}`,
    );
  }
  const clientCert = options.clientCert ?? 'handshake';
  if (clientCert !== 'handshake' && clientCert !== 'renegotiate') {
    throw new RangeError(`startSimulator: clientCert must be 'handshake' or 'renegotiate', got ${String(clientCert)}`);
  }
  checkOption('sessionIdleMs', options.sessionIdleMs, 0);
  checkOption('maxSegmentBytes', options.maxSegmentBytes, 1);
  const dir = path.resolve(options.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'scb-m2m-simulator-'))));
  const uploadsDir = path.join(dir, 'uploads');
  const keepFiles = options.keepFiles ?? true;
  const deliveriesDir = keepFiles ? path.join(dir, 'deliveries') : undefined;
  // Files in transit belonged to sessions of an earlier run, which ended with it.
  await fsp.rm(uploadsDir, { recursive: true, force: true });
  await fsp.mkdir(uploadsDir, { recursive: true });
  if (deliveriesDir) await fsp.mkdir(deliveriesDir, { recursive: true });

  const specs = options.clients ?? DEFAULT_CLIENTS;
  const names = new Set<string>();
  for (const spec of specs) {
    if (!/^[A-Za-z0-9._-]+$/.test(spec.name) || names.has(spec.name)) {
      throw new RangeError(
        `startSimulator: client name "${spec.name}" must be unique and use only letters, digits, ".", "_" and "-" (it names the .pfx file)`,
      );
    }
    names.add(spec.name);
  }
  const kept = await SimulatorState.open(dir);
  const generated = await kept.pki(specs);
  const caPath = path.join(dir, 'ca.pem');
  await fsp.writeFile(caPath, generated.caPem);
  await fsp.writeFile(path.join(dir, 'crl.pem'), generated.crlPem);
  const certificates: Record<string, SimulatorCertificate> = {};
  const clients = new Map<string, SimulatorCertificate>();
  for (const c of generated.clients) {
    const certPath = path.join(dir, `${c.spec.name}.pfx`);
    await fsp.writeFile(certPath, c.pfx, { mode: 0o600 });
    const certificate: SimulatorCertificate = { ...c.spec, path: certPath, serialNumber: c.serialNumber };
    certificates[c.spec.name] = certificate;
    clients.set(normaliseSerial(c.serialNumber), certificate);
  }

  const stats: SimulatorStats = {
    connections: 0,
    tlsHandshakes: 0,
    requests: 0,
    heartbeats: 0,
    sessionsCreated: 0,
    uploads: 0,
    historyRequests: 0,
    refused: 0,
    renegotiations: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
  const discard = (p: Promise<void>): void => void p.catch(() => undefined);
  const sessions = new SessionStore(options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS, (session) => {
    // The pending segments of a session go with it.
    for (const file of session.uploads.values()) discard(file.discard());
    session.uploads.clear();
  });
  const deliveries = new DeliveryStore(
    {
      delayMs: options.historyDelayMs ?? DEFAULT_HISTORY_DELAY_MS,
      unknownForMs: options.unknownForMs ?? 0,
      shape: historyShape,
    },
    (line) => kept.appendHistory(line),
  );
  deliveries.restore(await kept.history());
  // Segments that survive a session renewal belong to the certificate instead of the session.
  const byCertificate = new Map<string, Map<string, PendingFile>>();
  const uploadsOf = (session: Session): Map<string, PendingFile> => {
    if (!options.segmentsSurviveSessionRenewal) return session.uploads;
    let uploads = byCertificate.get(session.serial);
    if (!uploads) byCertificate.set(session.serial, (uploads = new Map()));
    return uploads;
  };
  const waits = new Map<NodeJS.Timeout, () => void>();
  const state: ServerState = {
    clients,
    revokedSerials: generated.revokedSerials,
    sessions,
    faults: new FaultQueue(() => sessions.expireAll()),
    deliveries,
    stats,
    maxSegmentBytes: options.maxSegmentBytes ?? SEGMENT_SIZE + MULTIPART_OVERHEAD,
    uploadsDir,
    deliveriesDir,
    clientCert,
    uploadsOf,
    wait: (ms) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waits.delete(timer);
          resolve();
        }, ms);
        waits.set(timer, resolve);
      }),
    log: options.verbose ? (line) => console.log(line) : undefined,
  };

  const server = https.createServer(
    {
      key: generated.serverKeyPem,
      cert: generated.serverCertPem,
      ca: [generated.caPem],
      // On demand: no certificate in the first handshake; a renegotiation (TLS 1.2 only) asks for it
      // in a full handshake, as the F5 does (no session resumption on renegotiation).
      requestCert: clientCert === 'handshake',
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      ...(clientCert === 'renegotiate' && {
        maxVersion: 'TLSv1.2' as const,
        secureOptions: cryptoConstants.SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION,
      }),
      requestTimeout: REQUEST_TIMEOUT_MS,
    },
    requestHandler(state),
  );
  server.maxConnections = MAX_CONNECTIONS;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    stats.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', () => stats.tlsHandshakes++);
  // A failed handshake is the client's problem; it must not reach 'error'.
  server.on('tlsClientError', (err) => state.log?.(`TLS handshake failed: ${err.message}`));

  // Asked for no port: the last run's, so that configured clients keep working; any free one when that is taken.
  const remembered = options.port ? undefined : kept.port;
  let port: number;
  try {
    port = await listen(server, options.port || remembered || 0);
  } catch (err) {
    if (remembered === undefined || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    port = await listen(server, 0);
  }
  server.on('error', (err) => state.log?.(`server error: ${err.message}`));
  await kept.save(port);

  let stopped: Promise<void> | undefined;
  return {
    url: `https://127.0.0.1:${port}/`,
    port,
    dir,
    caPem: generated.caPem,
    caPath,
    certificates,
    faults: state.faults,
    stats: () => ({ ...stats, sessionsCreated: sessions.created }),
    resetMaxInFlight: () => {
      stats.maxInFlight = stats.inFlight;
    },
    deliveries: () => deliveries.list(),
    settleHistory: () => deliveries.settle(),
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        for (const [timer, resolveWait] of waits) {
          clearTimeout(timer);
          resolveWait();
        }
        waits.clear();
        sessions.expireAll();
      });
      return stopped;
    },
  };
}
