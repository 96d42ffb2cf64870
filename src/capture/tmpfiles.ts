/**
 * Temporary output files still being written (a capture or OOB output goes to `.<name>.<pid>.tmp`
 * beside its target and is renamed when complete). If the process exits before that (a second
 * Ctrl-C, the reader of standard output going away), the exit hook removes them: a run never
 * leaves a half-written file behind, under either name.
 */
import { unlinkSync } from 'node:fs';

const live = new Set<string>();
let hooked = false;

function removeAll(): void {
  for (const p of live) {
    try {
      unlinkSync(p);
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

/** Remember a temporary file until {@link untrackTmp}; removed if the process exits first. */
export function trackTmp(path: string): void {
  live.add(path);
  if (!hooked) {
    hooked = true;
    process.on('exit', removeAll);
  }
}

/** The file was renamed into place or removed: nothing to clean up. */
export function untrackTmp(path: string): void {
  live.delete(path);
}
