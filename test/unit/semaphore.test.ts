import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../pkg/concurrency/semaphore.js';

/** A promise with its resolve handle, so a test decides when each holder finishes. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Semaphore', () => {
  it('runs at most limit at once, the rest in arrival order as slots free', async () => {
    const semaphore = new Semaphore(2);
    const gates = Array.from({ length: 5 }, gate);
    const began: number[] = [];
    const runs = gates.map((g, i) =>
      semaphore.run(async () => {
        began.push(i);
        await g.promise;
        return i;
      }),
    );
    await settle();
    expect(began).toEqual([0, 1]);
    gates[1].open();
    await settle();
    expect(began).toEqual([0, 1, 2]);
    gates[0].open();
    gates[2].open();
    await settle();
    expect(began).toEqual([0, 1, 2, 3, 4]);
    gates[3].open();
    gates[4].open();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
  });

  it('frees the slot of a holder that throws, and passes the error on', async () => {
    const semaphore = new Semaphore(1);
    await expect(semaphore.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await semaphore.run(() => Promise.resolve('next'))).toBe('next');
  });

  it('rejects a limit that is not a positive integer', () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) expect(() => new Semaphore(limit)).toThrow(RangeError);
  });
});
