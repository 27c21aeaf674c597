import { describe, expect, it } from 'vitest';
import { DockerDeadlineError, pullTimeoutError, withDeadline } from '../../internal/worker/docker-execution.js';

describe('withDeadline', () => {
  it('passes an answer in time through', async () => {
    await expect(withDeadline('an inspect', 1000, async () => 'ok')).resolves.toBe('ok');
  });

  it('aborts a call that never answers and rejects at the deadline, even if the call ignores the abort', async () => {
    let aborted = false;
    const started = Date.now();
    const never = withDeadline('a container start', 100, (signal) => {
      signal.addEventListener('abort', () => (aborted = true));
      return new Promise<never>(() => undefined);
    });
    await expect(never).rejects.toThrow(DockerDeadlineError);
    await expect(never).rejects.toThrow('Docker did not answer a container start within 0.1 s; is the engine hung?');
    expect(aborted).toBe(true);
    // The call never answers: only the deadline can end it (the bound leaves room for a loaded machine).
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('rejects with the error the caller makes for its deadline', async () => {
    const pull = withDeadline('a pull', 50, () => new Promise<never>(() => undefined), () => pullTimeoutError('reg.example/x:1', 300_000));
    await expect(pull).rejects.toThrow(/^ImagePullTimeout: image reg.example\/x:1 was not pulled within 5m \(worker --pull-timeout\)$/);
  });
});
