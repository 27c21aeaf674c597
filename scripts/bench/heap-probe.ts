import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Loaded into a bench's Titan processes with `--import` (heapProbeNodeOptions):
 * on SIGUSR2 the process collects all its garbage and appends its live heap,
 * in bytes, to heap-<pid>.txt in TITAN_HEAP_PROBE_DIR. What RSS cannot tell:
 * whether anything is kept, apart from the collector's timing.
 */
const dir = process.env.TITAN_HEAP_PROBE_DIR;
if (dir) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  process.on('SIGUSR2', () => {
    gc();
    fs.appendFileSync(path.join(dir, `heap-${process.pid}.txt`), `${process.memoryUsage().heapUsed}\n`);
  });
}
