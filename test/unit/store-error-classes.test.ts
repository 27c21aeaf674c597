import { BrokenCircuitError } from 'cockatiel';
import { castGrpcErrorMessage, GRPCDeadlineExceededError, GRPCOutOfRangeError, GRPCUnavailableError, EtcdPermissionDeniedError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { TitanError } from '../../pkg/model/errors.js';
import { isCompactedError, isFutureRevisionError, isTransientStoreError, storeError } from '../../pkg/store/errors.js';

describe('etcd error classes', () => {
  it('tells a compacted revision from a future one, for reads, watches and wrapped errors', () => {
    const compactedRead = new GRPCOutOfRangeError('13 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted');
    const futureRead = new GRPCOutOfRangeError('11 OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision');
    const compactedWatch = castGrpcErrorMessage('Watcher canceled: etcdserver: mvcc: required revision has been compacted');
    expect(isCompactedError(compactedRead)).toBe(true);
    expect(isCompactedError(compactedWatch)).toBe(true);
    expect(isCompactedError(storeError(compactedRead, ['http://x:1']))).toBe(true);
    expect(isCompactedError(futureRead)).toBe(false);
    expect(isFutureRevisionError(futureRead)).toBe(true);
    expect(isFutureRevisionError(compactedRead)).toBe(false);
    // The same words in some other error are no refusal of a revision.
    expect(isCompactedError(new Error('required revision has been compacted'))).toBe(false);
  });

  it('counts only failures that waiting may cure as transient', () => {
    expect(isTransientStoreError(new GRPCUnavailableError('14 UNAVAILABLE: no connection'))).toBe(true);
    expect(isTransientStoreError(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED'))).toBe(true);
    expect(isTransientStoreError(new BrokenCircuitError())).toBe(true);
    expect(isTransientStoreError(new TitanError('Unavailable', 'cannot reach etcd'))).toBe(true);
    expect(isTransientStoreError(new EtcdPermissionDeniedError('etcdserver: permission denied'))).toBe(false);
    expect(isTransientStoreError(new TitanError('PermissionDenied', 'denied'))).toBe(false);
    expect(isTransientStoreError(new Error('UNAVAILABLE'))).toBe(false);
  });
});
