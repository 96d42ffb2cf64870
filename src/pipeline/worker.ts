/**
 * Crypto worker thread: receives batches (data + meta ArrayBuffers, transferred), runs the jobs
 * in place with the same runJobs as the inline path, and transfers the buffers back.
 * Knows nothing of SAs beyond the slot definitions (keys) it is sent.
 */
import { parentPort } from 'node:worker_threads';
import { runJobs, SlotTable, type SlotDef } from '../offload/jobs.js';

const table = new SlotTable();
/** Fault injection for tests: IPSECOV2_FAULT=crash:N kills this worker on its Nth batch. */
const fault = /^crash:(\d+)$/.exec(process.env.IPSECOV2_FAULT ?? '');
const crashAt = fault ? Number(fault[1]) : 0;
let batches = 0;

parentPort!.on('message', (msg: { id: number; data: ArrayBuffer; meta: ArrayBuffer; count: number; defs: SlotDef[] }) => {
  batches++;
  if (crashAt && batches === crashAt) process.exit(70);
  for (const d of msg.defs) table.define(d);
  try {
    runJobs(table, new Uint8Array(msg.data), new Int32Array(msg.meta), msg.count);
    parentPort!.postMessage({ id: msg.id, data: msg.data, meta: msg.meta }, [msg.data, msg.meta]);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, data: msg.data, meta: msg.meta, error: String((e as Error).message) }, [msg.data, msg.meta]);
  }
});
