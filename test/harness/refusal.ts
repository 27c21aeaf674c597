import { expect } from 'vitest';
import { isTitanError, type TitanError } from '../../pkg/model/index.js';

/** The InvalidInput error `run` throws (its field and message); the test fails when it throws nothing or anything else. */
export function refusal(run: () => unknown): TitanError {
  try {
    run();
  } catch (err) {
    expect(isTitanError(err, 'InvalidInput'), String(err)).toBe(true);
    return err as TitanError;
  }
  throw new Error('expected InvalidInput');
}
