/**
 * Temporary output files still being written (a capture or OOB output goes to `.<name>.<pid>.tmp`
 * beside its target and is renamed when complete). If the process exits before that (a second
 * Ctrl-C, the reader of standard output going away), the exit hook removes them: a run never
 * leaves a half-written file behind, under either name. `replaceFile` puts a finished one in
 * place.
 */
import { spawn } from 'node:child_process';
import { lstatSync, realpathSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { soleOpener } from '../crypto/native.js';
import { envFlag } from '../env.js';

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

/** Where an output file goes: see {@link outputPlace}. */
export interface OutputPlace {
  /** Open the target itself and write it in place (no temporary file, no rename). */
  readonly direct: boolean;
  /** The target is a FIFO (direct): opened once a program reads it (capture/writer.ts openFifoForWriting). */
  readonly fifo: boolean;
  /** The file to write (direct) or to replace (the target, or the file a symbolic link names). */
  readonly path: string;
}

/**
 * How an output file is written. An existing target that is not a regular file once symbolic
 * links are followed (a device such as /dev/null, a FIFO another program reads, a directory) is
 * opened and written in place, as `tcpdump -w` does: a temporary file renamed onto it would
 * replace the device or the FIFO itself (for root, /dev/null for the whole system). Anything else
 * is written to a temporary file renamed onto `path`: the target, or the regular file a symbolic
 * link names, so that the link stays a link. A target that does not exist (a dangling link
 * included) is created.
 */
export function outputPlace(target: string): OutputPlace {
  let st;
  try {
    st = statSync(target);
  } catch {
    return { direct: false, fifo: false, path: target };
  }
  if (!st.isFile()) return { direct: true, fifo: st.isFIFO(), path: target };
  try {
    return { direct: false, fifo: false, path: realpathSync(target) };
  } catch {
    return { direct: false, fifo: false, path: target };
  }
}

/**
 * Would two names (outputs, or an output and the input) be the same regular file? Both would
 * then be written through the same temporary name, and one replace the other. A device or a FIFO
 * (`-w /dev/null --oob /dev/null`) may be shared.
 */
export function sameOutputFile(a: string, b: string): boolean {
  if (a === '-' || b === '-') return false;
  const pa = outputPlace(a);
  const pb = outputPlace(b);
  return !pa.direct && !pb.direct && resolve(pa.path) === resolve(pb.path);
}

/** Old outputs at least this large are removed by a detached `rm`, not inside this process. */
const ASIDE_MIN_BYTES = 32 << 20;

/** Old outputs at least this large are reused (below). */
export const REUSE_MIN_BYTES = 32 << 20;

/**
 * Take a large old output as the new output's file, to be overwritten in place: renamed to `tmp`
 * and opened for writing without truncation (the writer truncates it to the bytes written at the
 * end, then renames it back). Its pages are already in the page cache, so the writes copy into
 * them instead of allocating fresh ones: on this VM, whose freed memory goes back to the host, a
 * fresh page costs a fault in the host (~7 µs each, up to ~4 s of system time per 2.4 GB); a
 * re-run over a 2 GB output took 2.40 s instead of 3.70 s (medians of 11; see the README).
 *
 * Only when nothing else could see the change: a regular file of this user's, one link, and no
 * other open file description of it anywhere (a write lease, through the addon: a Wireshark still
 * showing the old output, a `tail -f`, a mapping). Else, and without the addon, off Linux, or with
 * IPSECOV2_NO_REUSE=1: null, and the old output is replaced at the end as before.
 *
 * The cost: from here on the old output is gone from its name, and a run that fails leaves
 * neither it nor a new one (tcpdump and tshark truncate their output at the start too). The new
 * output keeps the old file's mode (a new file gets 0666 less the umask).
 */
export async function reuseOldOutput(file: string, tmp: string): Promise<FileHandle | null> {
  if (process.platform !== 'linux' || envFlag('IPSECOV2_NO_REUSE')) return null;
  let st;
  try {
    st = lstatSync(file);
  } catch {
    return null;
  }
  if (!st.isFile() || st.nlink !== 1 || st.size < REUSE_MIN_BYTES || st.uid !== process.geteuid?.()) return null;
  let fh: FileHandle;
  try {
    fh = await open(file, 'r+');
  } catch {
    return null;
  }
  try {
    const now = await fh.stat();
    if (now.ino !== st.ino || now.dev !== st.dev || soleOpener(fh.fd) !== true) {
      await fh.close();
      return null;
    }
    renameSync(file, tmp);
    return fh;
  } catch {
    await fh.close().catch(() => undefined);
    return null;
  }
}

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
