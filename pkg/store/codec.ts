import { Packr } from 'msgpackr';

// Plain maps, no record extension: any msgpack reader can decode a value fetched with etcdctl.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

export function decode<T>(bytes: Buffer | Uint8Array): T {
  return packr.unpack(bytes) as T;
}
