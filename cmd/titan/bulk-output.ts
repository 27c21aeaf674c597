import cliProgress from 'cli-progress';
import type { BulkSubmission } from '../../internal/cli/cluster-client.js';
import { formatDuration, trimNumber } from '../../internal/cli/format.js';
import type { CliIO } from '../../internal/cli/io.js';

/** Above this many jobs, `submit -n --output json` leaves the id list out. */
export const MAX_IDS_IN_JSON = 1000;

/** On a terminal, a progress bar on stderr while `run` submits `total` jobs. */
export async function withProgressBar<T>(io: CliIO, total: number, run: (onProgress?: (done: number) => void) => Promise<T>): Promise<T> {
  if (!io.errIsTTY) return run();
  const bar = new cliProgress.SingleBar(
    { format: 'submitting [{bar}] {value}/{total} jobs {percentage}% | {eta_formatted} left', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  try {
    return await run((done) => bar.update(done));
  } finally {
    bar.stop();
  }
}

export interface BulkSummary {
  submitted: number;
  seconds: number;
  jobsPerSec: number;
  ids?: string[];
}

/** `submit -n --output json`. */
export function bulkSummary(result: BulkSubmission): BulkSummary {
  return {
    submitted: result.submitted,
    seconds: Number(result.seconds.toFixed(3)),
    jobsPerSec: Math.round(result.jobsPerSec),
    ...(result.submitted <= MAX_IDS_IN_JSON ? { ids: result.ids } : {}),
  };
}

/** `submit -n`: one line for the table output. */
export function describeBulk(result: BulkSubmission): string {
  return `submitted ${result.submitted} jobs in ${formatDuration(result.seconds * 1000)} (${trimNumber(result.jobsPerSec, 0)} jobs/s, ${result.batches} ${result.batchUnit})`;
}
