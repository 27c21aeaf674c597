import { TitanError } from '../../pkg/model/errors.js';
import { CorruptRecordError, records, type RecordCodec } from '../../pkg/store/codec.js';
import type { Collection } from '../../pkg/store/keys.js';
import type { Store } from '../../pkg/store/store.js';
import { renderTable } from './format.js';

/** One problem `titan doctor` found. */
export interface DoctorFinding {
  key: string;
  kind: string;
  problem: string;
  /** What the operator can do about it. */
  fix: string;
}

export interface DoctorReport {
  /** Records read, per collection. */
  checked: Record<string, number>;
  findings: DoctorFinding[];
}

const COLLECTIONS: readonly { name: Collection; codec: RecordCodec<unknown> }[] = [
  { name: 'jobs', codec: records.job },
  { name: 'nodes', codec: records.node },
  { name: 'assign', codec: records.assignment },
  { name: 'reports', codec: records.report },
  { name: 'queues', codec: records.queue },
  { name: 'logs', codec: records.logChunk },
];

function fixFor(name: Collection, key: string): string {
  switch (name) {
    case 'jobs':
      return 'the leading master marks the job Failed (reason Corrupt); if it stays, remove the key';
    case 'nodes':
      return "the node's worker rewrites it when it registers again; or remove the key";
    case 'logs':
      return 'readers show a marker in its place; remove the key to drop it';
    case 'reports':
      return "the node rewrites it with the attempt's next report; or remove the key";
    default:
      return `remove the key (etcdctl del ${key}) and write it again through titan`;
  }
}

function finding(name: Collection, err: CorruptRecordError): DoctorFinding {
  return { key: err.key, kind: name, problem: err.why, fix: fixFor(name, err.key) };
}

/**
 * Reads every record Titan keeps (paged by bytes, so any amount reads) and
 * checks each against its schema: what is corrupt, and what to do about it.
 */
export async function runDoctor(store: Store): Promise<DoctorReport> {
  const report: DoctorReport = { checked: {}, findings: [] };
  for (const { name, codec } of COLLECTIONS) {
    let count = 0;
    const read = await store.scan(store.keys.collection(name), codec, (page) => void (count += page.length));
    report.checked[name] = count + read.corruptCount;
    report.findings.push(...read.corrupt.map((err) => finding(name, err)));
    if (read.corruptCount > read.corrupt.length) {
      report.findings.push({
        key: store.keys.collection(name),
        kind: name,
        problem: `${read.corruptCount - read.corrupt.length} more corrupt records`,
        fix: 'fix the ones listed, then run titan doctor again',
      });
    }
  }
  try {
    await store.getLeader();
  } catch (err) {
    if (!(err instanceof CorruptRecordError)) throw err;
    report.findings.push({ key: err.key, kind: 'leader', problem: err.why, fix: 'the leading master rewrites it when it next campaigns; or remove the key' });
  }
  return report;
}

export function renderDoctorReport(report: DoctorReport): string {
  const checked = Object.entries(report.checked)
    .map(([name, n]) => `${n} ${name}`)
    .join(', ');
  if (report.findings.length === 0) return `no problems found (records checked: ${checked})\n`;
  return `${renderTable(
    ['KEY', 'KIND', 'PROBLEM', 'WHAT TO DO'],
    report.findings.map((f) => [f.key, f.kind, f.problem, f.fix]),
  )}records checked: ${checked}\n`;
}

/** The error `titan doctor` exits with (1) after printing its report, when it found anything. */
export function doctorFailure(report: DoctorReport): TitanError | undefined {
  const n = report.findings.length;
  return n === 0 ? undefined : new TitanError('Corrupt', `${n} problem${n === 1 ? '' : 's'} found in the records under the prefix`);
}
