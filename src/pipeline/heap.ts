/**
 * Fewer page faults: glibc's main heap keeps the memory it frees, and the heap it grows into is
 * backed by transparent huge pages (the addon's heapHuge; Linux with glibc).
 *
 * Why. A run's buffers (the reader's 1 MiB chunks, the writers' 1 MiB output buffers, the crypto
 * batches) come from malloc. glibc gives a buffer of that size an mmap() of its own, unmapped on
 * free(), until its adaptive threshold moves such buffers into its heap, whose top it then gives
 * back to the kernel when freed; so a buffer made again after one was dropped is often fresh
 * memory (21-81 of a 1 MiB buffer's 256 pages, test/heap-tuning.test.ts), and the first touch of
 * each fresh 4 KiB page is a page fault. On the 2-core bench machine (a VM) a fault costs ~11 us:
 * touching 64 MiB took 177 ms in 4 KiB pages and 4 ms in 2 MiB ones (a C test). A 200k-frame
 * AES-GCM run took ~17.5k faults (`perf stat`), ~12k of them on the main thread.
 *
 * What. Once per process, before the run allocates its buffers:
 * - buffers under 32 MiB come from the heap, and freed memory stays there for the next allocation
 *   (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 256 MiB);
 * - the heap grows now, by RESERVE + 64 MiB of address space (M_TOP_PAD; no memory until touched),
 *   and that range gets MADV_HUGEPAGE: where the kernel's transparent huge pages are "madvise"
 *   or "always", its first touches fault in 2 MiB at a time. Under "never" the advice does
 *   nothing and the rest still applies.
 * The same run then took ~13.5k faults (~9k on the main thread; none left on the I/O threads) and
 * 0.758 -> 0.720 s at 2 workers; 2 GB of AES-GCM 3.23 -> 2.91 s; AES-CBC and 64 B frames the same
 * (interleaved runs, medians; README, Speed). Peak RSS is ~5-7 MB higher, since freed memory is
 * kept. V8's own heap (separate mappings) and the other threads' malloc arenas are left as they
 * are: most of the faults that remain are there and in Node's own start.
 *
 * The CLI asks for it (RunOptions.heapTuning: it owns its process); a program embedding
 * runCapture keeps glibc's defaults unless it asks. IPSECOV2_NO_HEAP_TUNING=1 turns it off.
 */
import { tuneHeap } from '../crypto/native.js';
import { envFlag } from '../env.js';

/** Bytes allocated (and freed at once) to grow the heap in one piece. */
const RESERVE = 16 << 20;

let applied: number | null | undefined;

/**
 * Tune the heap once (later calls return the first result): the bytes given huge pages, 0 when
 * none were (no 2 MiB-aligned range in the new space), a negative errno when madvise refused, or
 * null when nothing was done (turned off, no addon, not Linux with glibc).
 */
export function applyHeapTuning(wanted: boolean): number | null {
  if (!wanted) return null;
  if (applied === undefined) applied = envFlag('IPSECOV2_NO_HEAP_TUNING') ? null : tuneHeap(RESERVE);
  return applied;
}
