/** The file the benchmark uploads, and the same bytes as v2 segment files for curl. */
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SEGMENT_SIZE } from '../lib/api';
import { MiB, sizeLabel } from './format';

/** Random-ish content, fast: one random MiB, its index stamped into each copy; starts with '<' like XML. */
async function writeTestFile(file: string, bytes: number): Promise<void> {
  const block = crypto.randomBytes(MiB);
  block.write('<?xml version="1.0" encoding="UTF-8"?><bench>', 0, 'latin1');
  const handle = await fs.open(file, 'w');
  try {
    for (let offset = 0, i = 0; offset < bytes; offset += MiB, i++) {
      block.writeUInt32BE(i, 64);
      await handle.write(block, 0, Math.min(MiB, bytes - offset));
    }
  } finally {
    await handle.close();
  }
}

/** Cuts the file into v2 segment files for curl (outside any timing). */
async function splitSegments(file: string, bytes: number, dir: string): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const handle = await fs.open(file, 'r');
  const buffer = Buffer.alloc(SEGMENT_SIZE);
  const segments: string[] = [];
  try {
    for (let offset = 0; offset < bytes; offset += SEGMENT_SIZE) {
      const { bytesRead } = await handle.read(buffer, 0, SEGMENT_SIZE, offset);
      const segment = path.join(dir, `segment-${segments.length}`);
      await fs.writeFile(segment, buffer.subarray(0, bytesRead));
      segments.push(segment);
    }
  } finally {
    await handle.close();
  }
  return segments;
}

export interface BenchFile {
  mib: number;
  file: string;
  /** The same bytes as v2 segment files, for curl. */
  segments: string[];
}

/** Runs fn with a file of `mib` MiB and its segment files, and always removes them. */
export async function withBenchFile<T>(
  work: string,
  mib: number,
  log: (line: string) => void,
  fn: (bench: BenchFile) => Promise<T>,
): Promise<T> {
  const file = path.join(work, `bench-${mib}MiB.xml`);
  const segmentsDir = path.join(work, `segments-${mib}`);
  try {
    await writeTestFile(file, mib * MiB);
    const segments = await splitSegments(file, mib * MiB, segmentsDir);
    log(`${sizeLabel(mib * MiB)}: ${segments.length} segments; file and segment files written`);
    return await fn({ mib, file, segments });
  } finally {
    await fs.rm(file, { force: true });
    await fs.rm(segmentsDir, { recursive: true, force: true });
  }
}
