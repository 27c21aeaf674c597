import { formatDuration, TitanError } from '../../pkg/model/index.js';
import { errorMessage } from './executor.js';

/**
 * What Docker's errors mean, classified by their HTTP status (dockerode's
 * `statusCode`). Where the status alone does not tell, the engine's message
 * is read, and only here, each time with a comment saying why.
 */

/** The HTTP status of a Docker answer; undefined when there was none (no connection, a deadline). */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** No such container (or image): 404. */
export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

/**
 * A create refused because the engine has no such image. 404 is also what a
 * missing network or volume gets, so the message decides.
 */
export function isMissingImage(err: unknown): boolean {
  return statusCode(err) === 404 && /no such image/i.test(errorMessage(err));
}

/**
 * A GPU container the engine refused: it has no device driver for the
 * request (no NVIDIA runtime). Docker answers 500, the status of any daemon
 * failure, with the driver's message (`could not select device driver
 * "nvidia" with capabilities: [[gpu]]`), so only the message tells this one apart.
 */
export function isMissingGpuRuntime(err: unknown): boolean {
  const code = statusCode(err);
  return code !== undefined && code >= 400 && /device driver|nvidia|gpu|capabilit/i.test(errorMessage(err));
}

/** The reason's first word when a pull outlived its deadline. */
export const IMAGE_PULL_TIMEOUT = 'ImagePullTimeout';

/** A pull slower than worker --pull-timeout: the run fails with this reason. */
export class ImagePullTimeoutError extends TitanError {
  constructor(image: string, ms: number) {
    super('Unavailable', `${IMAGE_PULL_TIMEOUT}: image ${image} was not pulled within ${formatDuration(ms)} (worker --pull-timeout)`);
    this.name = 'ImagePullTimeoutError';
  }
}
