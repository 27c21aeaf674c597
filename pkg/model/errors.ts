/**
 * Typed errors: every failure a user can see carries a stable code and a
 * message that says what to do. The CLI maps codes to exit statuses.
 */
export type ErrorCode =
  | 'InvalidInput' // the user gave something we cannot accept (exit 2)
  | 'NotFound'
  | 'Conflict' // the thing changed under us or is in the wrong state
  | 'Unavailable' // etcd or Docker could not be reached
  | 'Unauthenticated' // etcd does not accept who we say we are (certificate, user or password)
  | 'PermissionDenied' // etcd knows us, but our role does not cover the key
  | 'ResourceExhausted' // etcd is out of space, or a reply is over the message limit
  | 'Corrupt' // a record read from etcd does not have the shape Titan wrote (quarantined, see titan doctor)
  | 'Gone' // what was asked for is no longer kept (changes since an etcd revision that was compacted): read afresh
  | 'Internal';

export class TitanError extends Error {
  readonly code: ErrorCode;
  /** The field of user input at fault, when there is one. */
  readonly field?: string;

  constructor(code: ErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TitanError';
    this.code = code;
    this.field = options?.field;
  }
}

export function invalidInput(field: string, message: string): TitanError {
  return new TitanError('InvalidInput', `${field}: ${message}`, { field });
}

export function isTitanError(err: unknown, code?: ErrorCode): err is TitanError {
  return err instanceof TitanError && (code === undefined || err.code === code);
}
