import { Packr } from 'msgpackr';

// Plain maps, no record extension: any msgpack reader can decode a value fetched with etcdctl.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

export function decode<T>(bytes: Buffer | Uint8Array): T {
  return packr.unpack(bytes) as T;
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
