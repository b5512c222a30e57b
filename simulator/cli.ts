#!/usr/bin/env node
/**
 * `scb-m2m-simulator`: runs the SCB M2M simulator until Ctrl-C, printing what a client
 * needs (URL, API roots, CA file, each certificate with its passphrase) and each request.
 */
import { parseArgs } from 'node:util';
import { startSimulator } from './index';

const USAGE = `Usage: scb-m2m-simulator [--port N] [--dir DIR] [--history-delay MS] [--history-unknown-for MS]
                         [--history-shape camel|pascal|rapporthuvud] [--client-cert handshake|renegotiate]
                         [--segments-survive-session-renewal] [--no-keep-files] [--quiet]

A local SCB Indataportalen M2M server (mutual TLS, F5 session cookies, v1/v2 uploads,
history) on 127.0.0.1, for trying the Node-RED nodes without SCB.

  --port N            port to listen on (default 8443; 0: the last run's if free, else any)
  --dir DIR           where certificates, uploads and deliveries go
                      (default ./scb-m2m-simulator-data; kept across restarts, with history)
  --history-delay MS  how long an upload stays pending in history (default 2000)
  --history-unknown-for MS
                      how long history answers 404 for an upload after it closed (default 0)
  --history-shape S   history records in camelCase (default), .NET PascalCase, or the shape
                      of SCB's Rapporthuvud model (a head with rows carrying the messages)
  --client-cert M     ask for the client certificate in the first TLS handshake (default), or
                      later by a TLS 1.2 renegotiation, as an F5 with on-demand certificate
                      authentication does ("renegotiate")
  --segments-survive-session-renewal
                      keep a file's segments when its session is renewed (default: lost)
  --no-keep-files     keep only each delivery's size and sha256, not the file (benchmarks)
  --quiet             do not log each request
  --help              this text

A file containing SIMULATE-REJECT, or one that is not XML, is rejected in history.`;

function fail(message: string): never {
  console.error(`scb-m2m-simulator: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function wholeNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) fail(`${name} must be a whole number, got "${value}"`);
  return Number(value);
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined;
  fail(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
}

async function main(): Promise<void> {
  let values: {
    port?: string;
    dir?: string;
    'history-delay'?: string;
    'history-unknown-for'?: string;
    'history-shape'?: string;
    'client-cert'?: string;
    'segments-survive-session-renewal'?: boolean;
    'no-keep-files'?: boolean;
    quiet?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        dir: { type: 'string' },
        'history-delay': { type: 'string' },
        'history-unknown-for': { type: 'string' },
        'history-shape': { type: 'string' },
        'client-cert': { type: 'string' },
        'segments-survive-session-renewal': { type: 'boolean' },
        'no-keep-files': { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = wholeNumber('--port', values.port, 8443);
  if (port > 65535) fail(`--port must be at most 65535, got ${port}`);
  const historyShape = oneOf('--history-shape', values['history-shape'], ['camel', 'pascal', 'rapporthuvud'] as const);
  const clientCert = oneOf('--client-cert', values['client-cert'], ['handshake', 'renegotiate'] as const);
  const sim = await startSimulator({
    port,
    dir: values.dir ?? 'scb-m2m-simulator-data',
    historyDelayMs: wholeNumber('--history-delay', values['history-delay'], 2000),
    unknownForMs: wholeNumber('--history-unknown-for', values['history-unknown-for'], 0),
    historyShape,
    clientCert,
    segmentsSurviveSessionRenewal: values['segments-survive-session-renewal'] ?? false,
    keepFiles: !values['no-keep-files'],
    verbose: !values.quiet,
  });
  const lines = [
    `SCB M2M simulator listening on ${sim.url}`,
    `  API roots:  ${sim.url}m2m/v2/  and  ${sim.url}m2m/v1/`,
    `  CA file:    ${sim.caPath}  (give it to the client as the trusted CA)`,
    `  Client certificates (kept in the directory across restarts; the passphrases are the simulator's own, not secrets):`,
    ...Object.values(sim.certificates).map(
      (c) =>
        `    ${c.name.padEnd(14)} ${c.path}\n` +
        `                   passphrase "${c.passphrase}", organisationsnummer ${c.organisationsnummer}, ` +
        `undersokningar ${c.undersokningar.join(', ')}${c.filformat?.length ? `, filformat ${c.filformat.join(', ')}` : ''}, kind ${c.kind}`,
    ),
    'Press Ctrl-C to stop.',
  ];
  console.log(lines.join('\n'));
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping`);
    sim.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`scb-m2m-simulator: stop failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  const hint =
    code === 'EADDRINUSE'
      ? ' (the port is taken: choose another with --port)'
      : code === 'EACCES'
        ? ' (no permission: choose a port above 1023)'
        : '';
  console.error(`scb-m2m-simulator: ${err instanceof Error ? err.message : String(err)}${hint}`);
  process.exit(1);
});
