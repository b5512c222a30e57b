/** The benchmark's command line, and who it reports as. */

export interface Options {
  quick: boolean;
  sizesMiB: number[];
  repeats: number;
  inRow: number;
  concurrent: number;
  polled: number;
  pollSeconds: number;
  /** The file of the shared-core run, and its runs each way. */
  sharedMiB: number;
  sharedRepeats: number;
}

export function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const sizesAt = argv.indexOf('--sizes');
  const sizesMiB = sizesAt >= 0 ? (argv[sizesAt + 1] ?? '').split(',').map(Number) : quick ? [64] : [64, 256, 1024];
  if (sizesMiB.length === 0 || sizesMiB.some((s) => !Number.isInteger(s) || s < 1 || s > 4096)) {
    throw new Error(
      '--sizes takes sizes in MiB separated by commas, each 1..4096 (e.g. --sizes 64,256,1024); ' +
        `got "${argv[sizesAt + 1] ?? ''}".`,
    );
  }
  const counts = quick
    ? { inRow: 50, concurrent: 50, polled: 200, pollSeconds: 8, sharedMiB: 128, sharedRepeats: 3 }
    : { inRow: 200, concurrent: 50, polled: 1000, pollSeconds: 20, sharedMiB: 512, sharedRepeats: 7 };
  return { quick, sizesMiB, repeats: 5, ...counts };
}

/** Who the benchmark reports as: the simulator's default `valid` certificate. */
export const REPORTER = {
  organisationsnummer: '9990000045',
  undersokning: 'VINN',
  filformat: 'V40',
  referensperiod: '2024-01-31',
};
