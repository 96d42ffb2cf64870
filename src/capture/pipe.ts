/**
 * Pipes the reader or the writers use (standard input and output, a FIFO given by path): Linux
 * gives a pipe 64 KiB, so a 1 MiB chunk read from it, or an output buffer written to it, goes in
 * 64 KiB steps, each a wake-up of the process on the other side. Such a pipe is made 1 MiB
 * (Linux's default limit for a user, /proc/sys/fs/pipe-max-size) through the addon; without it,
 * or off Linux, nothing changes.
 */
import { setPipeSize } from '../crypto/native.js';

/** The size asked for a pipe on standard input or output, or a FIFO read by path. */
export const STD_PIPE_BYTES = 1 << 20;

/**
 * Make `fd` a pipe of STD_PIPE_BYTES: its size after, or null (no addon, or refused: a
 * descriptor that is not a pipe, a file or a terminal, gets EBADF from the kernel and is left
 * as it is).
 */
export function growPipe(fd: number): number | null {
  return setPipeSize(fd, STD_PIPE_BYTES);
}
