/**
 * A text output file (the OOB JSON Lines) written safely: to a temporary name beside the target,
 * renamed when complete, removed on failure. '-' writes to standard output.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export class OutputFile {
  private readonly stream: WriteStream | NodeJS.WriteStream;
  private readonly tmp: string | null;
  private readonly target: string;
  private buf: string[] = [];
  private size = 0;
  private error: Error | null = null;

  private constructor(target: string, stream: WriteStream | NodeJS.WriteStream, tmp: string | null) {
    this.target = target;
    this.stream = stream;
    this.tmp = tmp;
    stream.on('error', (e: Error) => { this.error = e; });
  }

  static async open(target: string): Promise<OutputFile> {
    if (target === '-') return new OutputFile(target, process.stdout, null);
    const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
    const s = createWriteStream(tmp, { flags: 'w', mode: 0o644 });
    await new Promise<void>((res, rej) => { s.once('open', () => res()); s.once('error', rej); });
    return new OutputFile(target, s, tmp);
  }

  write(line: string): void {
    this.buf.push(line);
    this.size += line.length;
    if (this.size >= 1 << 20) this.drain();
  }

  private drain(): void {
    if (this.buf.length === 0) return;
    if (this.error) throw this.error;
    this.stream.write(this.buf.join(''));
    this.buf = [];
    this.size = 0;
  }

  async close(): Promise<void> {
    this.drain();
    if (this.tmp === null) return;
    await new Promise<void>((res, rej) => (this.stream as WriteStream).end((e?: Error | null) => (e ? rej(e) : res())));
    if (this.error) throw this.error;
    await rename(this.tmp, this.target);
  }

  async abort(): Promise<void> {
    if (this.tmp === null) return;
    (this.stream as WriteStream).destroy();
    await unlink(this.tmp).catch(() => undefined);
  }
}
