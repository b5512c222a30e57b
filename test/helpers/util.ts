/** Small things many tests need. */
import * as crypto from 'node:crypto';
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
