/**
 * A worker thread of runSeeds: it gets the trace once (workerData), then runs
 * one seed per message and answers with its result, by index.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { simulateSeed, type SimulationOptions } from './run.js';
import type { SeedReply, SeedWorkerData } from './seed-threads.js';

const { nodes, jobs } = workerData as SeedWorkerData;
const port = parentPort;
port?.on('message', ({ index, run }: { index: number; run: SimulationOptions }) => {
  let reply: SeedReply;
  try {
    reply = { index, result: simulateSeed(nodes, jobs, run) };
  } catch (err) {
    reply = { index, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
