/**
 * Colour for messages: only when the stream is a TTY and NO_COLOR is not set (spec/cli.md).
 */
import { Chalk } from 'chalk';

const enabled = !!process.stderr.isTTY && process.env.NO_COLOR === undefined && process.env.CI === undefined;
const c = new Chalk({ level: enabled ? 1 : 0 });

export const style = {
  err: (s: string): string => c.red(s),
  warn: (s: string): string => c.yellow(s),
  ok: (s: string): string => c.green(s),
  dim: (s: string): string => c.dim(s),
  bold: (s: string): string => c.bold(s),
};
