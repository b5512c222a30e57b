/** Small things many tests need. */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** The hex SHA-256 of bytes (a string as UTF-8): what the simulator and the journal record of a file. */
export function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a process that must be told its port). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The JSON lines of a file written line by line (a recorder's, a journal's): none while it does
 * not exist yet; a line cut short by a process killed mid-write is left out.
 */
export function jsonLines<T = Record<string, unknown>>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as T];
      } catch {
        return [];
      }
    });
}
