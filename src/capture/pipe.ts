/**
 * Standard input and output as pipes: Linux gives a pipe 64 KiB, so a 1 MiB chunk read from it,
 * or an output buffer written to it, goes in 64 KiB steps, each a wake-up of the process on the
 * other side. A pipe on fd 0 or fd 1 is made 1 MiB (Linux's default limit for a user,
 * /proc/sys/fs/pipe-max-size) through the addon; without it, or off Linux, nothing changes.
 */
import { fstatSync } from 'node:fs';
import { setPipeSize } from '../crypto/native.js';

/** The size asked for a pipe on standard input or output. */
export const STD_PIPE_BYTES = 1 << 20;

/** When `fd` is a pipe, make it STD_PIPE_BYTES: its size after, or null (not a pipe, refused). */
export function growPipe(fd: number): number | null {
  try {
    return fstatSync(fd).isFIFO() ? setPipeSize(fd, STD_PIPE_BYTES) : null;
  } catch {
    return null;
  }
}
