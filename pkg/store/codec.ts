import { Packr } from 'msgpackr';
import type { TSchema, Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { TitanError } from '../model/errors.js';
import type { ApiToken, Assignment, Job, LogChunk, NodeInfo, Queue, RunReport, StorageAlarm } from '../model/index.js';
import { ApiTokenSchema, AssignmentSchema, JobSchema, LayoutSchema, RunReportSchema, StorageAlarmSchema, LeaderInfoSchema, LogChunkSchema, NodeInfoSchema, QueueSchema } from './schemas.js';

// Plain maps, no record extension: any msgpack reader can decode a value fetched with etcdctl.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

/** Unchecked: only for bytes this process encoded itself. Anything read from etcd goes through a RecordCodec. */
export function decode<T>(bytes: Buffer | Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/**
 * A record read from etcd that is not what Titan writes there: not msgpack,
 * or msgpack of the wrong shape. Never fatal: readers skip it (quarantine)
 * and say so.
 */
export class CorruptRecordError extends TitanError {
  readonly key: string;
  /** What is wrong with it, e.g. `/resources: Expected required property`. */
  readonly why: string;
  /** The version that was read (its mod revision), when known: a repair compares it. */
  readonly modRevision?: string;

  constructor(kind: RecordKind, key: string, why: string, modRevision?: string) {
    super('Corrupt', `the ${kind} record at ${key} is corrupt (${why}); it is skipped: see titan doctor`);
    this.name = 'CorruptRecordError';
    this.key = key;
    this.why = why;
    this.modRevision = modRevision;
  }
}

export type RecordKind = 'job' | 'node' | 'assignment' | 'report' | 'log chunk' | 'queue' | 'leader' | 'layout' | 'storage alarm' | 'token';

/** Decodes and validates one kind of record; the one way values read from etcd become typed. */
export interface RecordCodec<T> {
  readonly kind: RecordKind;
  /** Throws CorruptRecordError for bytes that are not a valid record of this kind. */
  decode(bytes: Uint8Array, key: string, modRevision?: string): T;
  /** The same check for a value already decoded (e.g. a record nested in another). */
  check(value: unknown, key: string, modRevision?: string): T;
}

function recordCodec<S extends TSchema, T>(kind: RecordKind, schema: S): RecordCodec<T & Static<S>> {
  const compiled = TypeCompiler.Compile(schema);
  const check = (value: unknown, key: string, modRevision?: string): T & Static<S> => {
    if (compiled.Check(value)) return value as T & Static<S>;
    const first = compiled.Errors(value).First();
    const why = first ? `${first.path || '/'}: ${first.message}` : 'wrong shape';
    throw new CorruptRecordError(kind, key, why, modRevision);
  };
  return {
    kind,
    check,
    decode(bytes, key, modRevision) {
      let value: unknown;
      try {
        value = packr.unpack(bytes);
      } catch (err) {
        throw new CorruptRecordError(kind, key, `not MessagePack: ${(err as Error).message}`, modRevision);
      }
      return check(value, key, modRevision);
    },
  };
}

/** The leader key's value (see Store.getLeader). */
export interface LeaderInfo {
  id: string;
  hostname?: string;
  since?: number;
  policy?: string;
}

/** The layout key's value (see pkg/store/layout.ts). */
export interface LayoutRecord {
  version: number;
  writtenAt: number;
  /** The component that wrote it, e.g. `titan-master 0.1.0`. */
  writtenBy: string;
}

export const records = {
  job: recordCodec<typeof JobSchema, Job>('job', JobSchema),
  node: recordCodec<typeof NodeInfoSchema, NodeInfo>('node', NodeInfoSchema),
  assignment: recordCodec<typeof AssignmentSchema, Assignment>('assignment', AssignmentSchema),
  report: recordCodec<typeof RunReportSchema, RunReport>('report', RunReportSchema),
  logChunk: recordCodec<typeof LogChunkSchema, LogChunk>('log chunk', LogChunkSchema),
  queue: recordCodec<typeof QueueSchema, Queue>('queue', QueueSchema),
  leader: recordCodec<typeof LeaderInfoSchema, LeaderInfo>('leader', LeaderInfoSchema),
  layout: recordCodec<typeof LayoutSchema, LayoutRecord>('layout', LayoutSchema),
  storageAlarm: recordCodec<typeof StorageAlarmSchema, StorageAlarm>('storage alarm', StorageAlarmSchema),
  token: recordCodec<typeof ApiTokenSchema, ApiToken>('token', ApiTokenSchema),
} as const;

/**
 * Whether bytes can be a msgpack map at all (the first byte): every record
 * is one. A cheap test for readers that skip decoding most values.
 */
export function looksLikeRecord(bytes: Uint8Array): boolean {
  const first = bytes[0];
  return bytes.length > 0 && ((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf);
}

/**
 * A copy of a decoded string that keeps nothing else alive. msgpackr (with
 * its native string extraction) returns the strings of a decoded value as
 * slices of one string of the whole value: an id kept from a decoded job
 * keeps all of that job's text in memory with it. Anything that keeps a few
 * strings of many decoded values should keep copies. Strings shorter than 13
 * characters are never slices (V8 copies them).
 */
export function flatString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}
