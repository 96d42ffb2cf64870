/**
 * The main thread is the pipeline's critical path (reading, SA state, output order); the other
 * threads of the process (crypto workers, libuv's I/O pool, V8's compiler and GC helpers) have
 * slack. With fewer cores than busy threads, a helper woken by the main thread (a write queued,
 * a batch posted) or by the kernel (a read done) preempts it. Measured on the 2-core bench machine,
 * 2 GB AES-GCM at 2 workers: the main thread waited 0.70-0.82 s runnable for a CPU (schedstat)
 * against ~3.1 s of running, in ~4500-5100 time slices.
 *
 * So the helpers are made SCHED_BATCH (the addon's threadBatch): the same CPU share as before,
 * against this process and every other one, but their wake-ups no longer preempt a running
 * thread. The main thread then waited 0.24-0.31 s in ~1200-1300 slices, and runs took 4-14 % less
 * wall time (9 interleaved runs each: 3.98 -> 3.41 s; npm run bench prints the comparison). With a CPU-bound process beside it, no change
 * (11 interleaved runs each: 5.56 s and 5.51 s). Nice values were tried too: helpers at +5..+19
 * helped as much on an idle machine but were slower beside a CPU-bound process (less CPU share).
 *
 * Linux with the addon only; the main thread is never changed; IPSECOV2_NO_HELPER_BATCH=1 turns
 * it off. Threads appear as a run starts (the I/O pool, a second crypto worker): apply() is
 * called a few times early on and sets each new one once.
 */
import { readdirSync } from 'node:fs';
import { setThreadBatch } from '../crypto/native.js';
import { envFlag } from '../env.js';

export class HelperScheduling {
  /** Threads looked at already (set, or left alone). */
  private readonly seen = new Set<number>();
  /** Helper threads made SCHED_BATCH so far. */
  batched = 0;
  private readonly on: boolean;

  constructor(wanted: boolean) {
    this.on = wanted && process.platform === 'linux' && !envFlag('IPSECOV2_NO_HELPER_BATCH');
  }

  /** Make every helper thread not seen yet SCHED_BATCH. */
  apply(): void {
    if (!this.on) return;
    let tids: string[];
    try {
      tids = readdirSync('/proc/self/task');
    } catch {
      return;
    }
    for (const t of tids) {
      const tid = Number(t);
      if (tid === process.pid || !(tid > 0) || this.seen.has(tid)) continue;
      this.seen.add(tid);
      try {
        if (setThreadBatch(tid)) this.batched++;
      } catch {
        // the thread has gone: nothing to do
      }
    }
  }
}
