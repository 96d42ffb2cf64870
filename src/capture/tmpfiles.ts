/**
 * Temporary output files still being written (a capture or OOB output goes to `.<name>.<pid>.tmp`
 * beside its target and is renamed when complete). If the process exits before that (a second
 * Ctrl-C, the reader of standard output going away), the exit hook removes them: a run never
 * leaves a half-written file behind, under either name. `replaceFile` puts a finished one in
 * place.
 */
import { spawn } from 'node:child_process';
import { renameSync, unlinkSync } from 'node:fs';
import { lstat, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

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

/** Old outputs at least this large are removed by a detached `rm`, not inside this process. */
const ASIDE_MIN_BYTES = 32 << 20;

/** How replaceFile put the new file in place (tests). */
export type Replaced = 'new' | 'renamed' | 'aside';

/**
 * Put a finished temporary file in place of its target. A plain rename() onto an existing file
 * is slow on ext4: it writes the new file's cached data out before it returns (the "auto_da_alloc"
 * safeguard for programs that replace files this way), ~1.1 s for a 2.2 GB capture here, and
 * frees the old file's blocks. A re-run writing to the same name would wait for both at its very
 * end. So an existing target is first renamed to a hidden name beside it (`.<name>.<pid>.old`),
 * the new file renamed onto the name now free, both synchronously (no other code of this
 * process runs between them; another process could find the name missing for those
 * microseconds), and the old copy removed: by a detached `rm` when it is large, so that this
 * process need not wait for its blocks to be freed. Windows, and a target that is not a regular
 * file (a symbolic link, a device), get the plain rename.
 */
export async function replaceFile(tmp: string, target: string): Promise<Replaced> {
  let st;
  try {
    st = await lstat(target);
  } catch {
    await rename(tmp, target);
    return 'new';
  }
  if (process.platform === 'win32' || !st.isFile()) {
    await rename(tmp, target);
    return 'renamed';
  }
  const aside = join(dirname(target), `.${basename(target)}.${process.pid}.old`);
  try {
    renameSync(target, aside);
  } catch {
    await rename(tmp, target);
    return 'renamed';
  }
  try {
    renameSync(tmp, target);
  } catch (e) {
    try { renameSync(aside, target); } catch { /* the old copy stays under the hidden name */ }
    throw e;
  }
  if (st.size < ASIDE_MIN_BYTES) {
    await unlink(aside).catch(() => undefined);
    return 'renamed';
  }
  // tracked until rm has started: if it cannot start, or this process ends first, it is removed here
  trackTmp(aside);
  const rm = spawn('rm', ['-f', '--', aside], { detached: true, stdio: 'ignore' });
  rm.once('spawn', () => untrackTmp(aside));
  rm.once('error', () => { void unlink(aside).catch(() => undefined).then(() => untrackTmp(aside)); });
  rm.unref();
  return 'aside';
}
