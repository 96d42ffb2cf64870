/**
 * Crypto worker thread: receives batches (data + meta ArrayBuffers, transferred, and the shared
 * input chunks rx jobs copy their bytes from), runs the jobs in place with the same runJobs as the
 * inline path, and transfers the buffers back.
 * Knows nothing of SAs beyond the slot definitions (keys) it is sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runJobs, SlotTable, type SlotDef } from '../offload/jobs.js';

const table = new SlotTable();
/**
 * Fault injection for tests: IPSECOV2_FAULT=crash:N kills the first worker on its Nth batch (the
 * others and its replacement are healthy, so the retry succeeds); crash-all:N kills every worker,
 * replacements included, on its Nth batch (so retried batches fail for good).
 */
const fault = /^(crash|crash-all):(\d+)$/.exec(process.env.IPSECOV2_FAULT ?? '');
const index = (workerData as { index?: number } | null)?.index ?? 0;
const crashAt = fault && (fault[1] === 'crash-all' || index === 0) ? Number(fault[2]) : 0;
let batches = 0;

// Started: the pool runs batches inline until a worker says so (pool.ts).
parentPort!.postMessage({ ready: true });

parentPort!.on('message', (msg: { id: number; data: ArrayBuffer; meta: ArrayBuffer; count: number; defs: SlotDef[]; srcs: SharedArrayBuffer[] }) => {
  batches++;
  if (crashAt && batches === crashAt) process.exit(70);
  for (const d of msg.defs) table.define(d);
  try {
    const t0 = performance.now();
    const srcs: Uint8Array[] = [];
    for (const ab of msg.srcs) srcs.push(new Uint8Array(ab));
    runJobs(table, new Uint8Array(msg.data), new Int32Array(msg.meta), msg.count, srcs);
    // the batch's crypto time: the pool grows only when the workers are the slower side
    parentPort!.postMessage({ id: msg.id, data: msg.data, meta: msg.meta, ms: performance.now() - t0 }, [msg.data, msg.meta]);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, data: msg.data, meta: msg.meta, error: String((e as Error).message) }, [msg.data, msg.meta]);
  }
});
