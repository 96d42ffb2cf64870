/**
 * Input chunks that crypto workers can read where the reader put them.
 *
 * A chunk is a SharedArrayBuffer (a worker gets it with a batch without a copy: the job names it,
 * J.SRC in offload/jobs.ts) seen on this thread through a plain ArrayBuffer over the same memory,
 * made by the addon: V8 copies to and from shared memory with relaxed atomics, ~850 ns against
 * ~100 ns for 1400 bytes here, and the main thread copies frames in JS (pass-through output, AH
 * jobs, frames written unchanged). Pass-through rx of 2 GB took 3.64 s with the frames in shared
 * memory itself, against 2.50 s before. Without the addon chunks are plain memory and jobs copy
 * their bytes on this thread, as before.
 */
import { aliasSharedMemory } from '../crypto/native.js';

/**
 * The shared memory under each alias. A WeakMap entry keeps its value alive as long as its key:
 * the memory lives as long as the alias (and views of it), and both go in the same collection.
 */
const sharedOf = new WeakMap<ArrayBufferLike, SharedArrayBuffer>();

/** A chunk of n bytes: shared memory seen through a plain alias (plain memory without the addon). */
export function sharedChunk(n: number): Buffer {
  const sab = new SharedArrayBuffer(n);
  const alias = aliasSharedMemory(sab);
  if (alias === null) return Buffer.allocUnsafeSlow(n);
  sharedOf.set(alias, sab); // before anything else can run: the alias must never outlive `sab`
  return Buffer.from(alias);
}

/** The SharedArrayBuffer whose memory `ab` (a chunk's alias) is, or undefined. */
export function sharedMemoryOf(ab: ArrayBufferLike): SharedArrayBuffer | undefined {
  return sharedOf.get(ab);
}
