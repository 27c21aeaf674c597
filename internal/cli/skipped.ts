import { TitanError } from '../../pkg/model/errors.js';
import type { ReadResult } from '../../pkg/store/store.js';

/** What a read skipped: the corrupt records it left out. */
export type Skipped = Pick<ReadResult, 'corrupt' | 'corruptCount'>;

/** How many keys a message names before it says "and N more". */
const NAMED = 3;

/**
 * The error a command raises after printing what it could read, when some
 * records were corrupt and skipped: the keys and why, and where to look next.
 */
export function skippedRecordsError(reads: readonly Skipped[]): TitanError | undefined {
  const count = reads.reduce((n, r) => n + r.corruptCount, 0);
  if (count === 0) return undefined;
  const named = reads.flatMap((r) => r.corrupt).slice(0, NAMED);
  const more = count - named.length;
  const list = named.map((e) => `${e.key} (${e.why})`).join(', ');
  return new TitanError(
    'Corrupt',
    `${count} record${count === 1 ? '' : 's'} could not be read and ${count === 1 ? 'was' : 'were'} skipped: ${list}${more > 0 ? ` and ${more} more` : ''}; run titan doctor`,
  );
}

export const NOTHING_SKIPPED: Skipped = { corrupt: [], corruptCount: 0 };
