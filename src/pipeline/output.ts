/**
 * A text output file (the OOB JSON Lines) written safely: to a temporary name beside the target,
 * renamed when complete, removed on failure (a file sink of capture/writer.ts: with the addon, a
 * thread of its own writes it). '-' writes to standard output.
 */
import { growPipe } from '../capture/pipe.js';
import { openFileSink, type Sink } from '../capture/writer.js';

/** Bytes gathered before a write to the OS. */
const OUT_BUF = 1 << 20;
/** Written buffers kept for reuse. */
const SPARE_BUFFERS = 4;
/** Buffer writes flush() leaves in flight (back-pressure; their buffers come back as spares). */
const FLUSH_KEEP = 2;

export class OutputFile {
  /** Lines are encoded straight into this buffer (no per-line Buffer, no join). */
  private buf: Buffer = Buffer.allocUnsafeSlow(OUT_BUF);
  private size = 0;
  /** Standard output's error (a file's is its sink's). */
  private streamError: Error | null = null;
  /** The reader of standard output went away (EPIPE): further lines are dropped quietly. */
  closedByPeer = false;
  private readonly spare: Buffer[] = [];
  /** Buffers handed over whose write has not called back yet. */
  private pending = 0;
  private waiter: (() => void) | null = null;

  /** `sink` for a file, `stream` (standard output) otherwise. */
  private constructor(
    private readonly sink: Sink | null,
    private readonly stream: NodeJS.WriteStream | null,
  ) {
    stream?.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') this.closedByPeer = true;
      else this.streamError = e;
      this.wake();
    });
  }

  /** @throws Node's system errors if the temporary file cannot be created; FifoWaitAborted. */
  static async open(target: string, signal?: AbortSignal): Promise<OutputFile> {
    if (target === '-') {
      growPipe(1);
      return new OutputFile(null, process.stdout);
    }
    return new OutputFile(await openFileSink(target, signal), null);
  }

  private get error(): Error | null {
    return this.sink !== null ? this.sink.error : this.streamError;
  }

  write(line: string): void {
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
    if (this.size + line.length * 3 > this.buf.length) {
      this.drain();
      if (line.length * 3 > this.buf.length) {
        if (!this.closedByPeer) this.put(Buffer.from(line, 'utf8'), null);
        return;
      }
    }
    this.size += this.buf.write(line, this.size, 'utf8');
  }

  /**
   * Room for `n` bytes written straight into the buffer: returns the offset in `buffer` to
   * write at; then `commit(end)`. No other call in between.
   */
  reserve(n: number): number {
    if (this.size + n > this.buf.length) {
      this.drain();
      if (n > this.buf.length) this.buf = Buffer.allocUnsafeSlow(n);
    }
    return this.size;
  }

  /** The buffer reserve's offset points into. */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Take the bytes written after reserve() up to `end`. */
  commit(end: number): void {
    this.size = end;
  }

  /**
   * Hand `chunk` to the sink or stream. Once written, `whole` (the output buffer it is part of)
   * becomes a spare: written buffers are reused (no page faults, no garbage).
   */
  private put(chunk: Buffer, whole: Buffer | null): void {
    this.pending++;
    const done = (): void => {
      this.pending--;
      if (whole !== null && whole.length === OUT_BUF && this.spare.length < SPARE_BUFFERS) this.spare.push(whole);
      this.wake();
    };
    if (this.sink !== null) this.sink.write(chunk, done);
    else this.stream!.write(chunk, done);
  }

  private drain(): void {
    if (this.size === 0) return;
    const e = this.error;
    if (e) throw e;
    if (this.closedByPeer) { this.size = 0; return; }
    // The sink keeps a reference until written: take a spare buffer it is done with, else a
    // fresh one; this one comes back when its write completes.
    this.put(this.buf.subarray(0, this.size), this.buf);
    this.buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(OUT_BUF);
    this.size = 0;
  }

  /** Buffer writes not called back yet (after flush(): at most FLUSH_KEEP). */
  get inFlight(): number {
    return this.pending;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /**
   * Back-pressure: wait while the OS side is behind. At most FLUSH_KEEP buffer writes stay in
   * flight: without that wait a main thread busy for many batches in a row never ran the write
   * callbacks that return buffers, and a fresh 1 MiB buffer was made instead each time (138 of
   * them in a 1.6M-frame 64 B run: peak RSS 118 -> 143 MB).
   */
  async flush(): Promise<void> {
    if (this.sink !== null) {
      await this.sink.wait(FLUSH_KEEP);
      return;
    }
    while (this.pending > FLUSH_KEEP && this.streamError === null && !this.closedByPeer) {
      await new Promise<void>((res) => { this.waiter = res; });
    }
    const s = this.stream!;
    if (!s.writableNeedDrain || this.streamError || this.closedByPeer) return;
    await new Promise<void>((res) => {
      const done = (): void => { s.off('drain', done); s.off('error', done); res(); };
      s.on('drain', done);
      s.on('error', done);
    });
  }

  async close(): Promise<void> {
    this.drain();
    if (this.sink === null) return;
    await this.sink.finish();
    const e = this.sink.error;
    if (e) throw e;
  }

  async abort(): Promise<void> {
    await this.sink?.abort();
  }
}
