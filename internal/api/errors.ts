import { TitanError, isTitanError, type ErrorCode } from '../../pkg/model/errors.js';

/** HTTP status of each error code: the class of failure, so clients branch on the status and show the message. */
const STATUS: Record<ErrorCode, number> = {
  InvalidInput: 400,
  Unauthenticated: 401,
  PermissionDenied: 403,
  NotFound: 404,
  Conflict: 409,
  Gone: 410,
  ResourceExhausted: 507,
  Corrupt: 500,
  Internal: 500,
  Unavailable: 503,
};

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** The error document of every failed call: the same `{error: {code, message}}` as `titan --output json`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string };
}

export function errorBody(err: TitanError): ErrorBody {
  return { error: { code: err.code, message: err.message, ...(err.field !== undefined ? { field: err.field } : {}) } };
}

/** Anything thrown by a handler → a TitanError (fastify's own errors carry a status; validation errors are bad input). */
export function toTitanError(err: unknown): TitanError {
  if (isTitanError(err)) return err;
  const e = err as { statusCode?: number; validation?: unknown; validationContext?: string; message?: string; code?: string };
  if (e.validation !== undefined) return new TitanError('InvalidInput', `${e.validationContext ?? 'request'}: ${e.message ?? 'invalid'}`);
  if (e.statusCode === 413) return new TitanError('InvalidInput', 'the request body is too large');
  if (e.statusCode === 415) return new TitanError('InvalidInput', 'send JSON (Content-Type: application/json)');
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return new TitanError('InvalidInput', e.message ?? 'bad request');
  return new TitanError('Internal', err instanceof Error ? err.message : String(err), { cause: err });
}
