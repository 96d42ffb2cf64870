/**
 * Opening a capture: format detection by content (magic numbers, never the file name), and the
 * streaming reader that hands out frames in batches. See input.ts for the memory model and
 * pcap.ts / pcapng.ts for the formats.
 *
 * Error policy: input that is not a capture at all (empty, unknown magic, header cut short)
 * throws {@link CaptureFormatError} from open. Once the header is recognised nothing about the
 * file's content throws: corruption becomes `warnings` (with byte offsets), `truncated`, and
 * counters; only I/O errors from the operating system propagate.
 */
import { constants as fsConstants, fstatSync } from 'node:fs';
import { open as fsOpen, stat as fsStat } from 'node:fs/promises';
import { growPipe } from './pipe.js';
import { ChunkedInput, FileSource, IterableSource, FdSource, type ByteSource } from './input.js';
import { PcapParser, pcapMagic, PCAP_HEADER_LEN, PCAP_MAGIC_MODIFIED } from './pcap.js';
import { BT_SHB, BYTE_ORDER_MAGIC, PcapngParser } from './pcapng.js';
import { type FormatParser, PARSE_FULL, PARSE_SKIP, PARSE_STOP, ReaderState } from './state.js';
import type { CaptureFrame, CaptureInterface, ReaderWarning } from './types.js';

/** The input is not a pcap or pcapng capture (thrown by open only). */
export class CaptureFormatError extends Error {
  readonly code = 'ERR_CAPTURE_FORMAT';
  constructor(message: string) {
    super(message);
    this.name = 'CaptureFormatError';
  }
}

/** Options of {@link openCapture} / {@link openCaptureStream}. */
export interface OpenOptions {
  /**
   * Largest captured length accepted for one frame (default 262144, libpcap's MAXIMUM_SNAPLEN).
   * Longer pcap records end the read; longer pcapng blocks are skipped with a warning.
   */
  maxFrameLen?: number;
  /** Bytes per input chunk (default 1 MiB). Larger records get a chunk of their own size. */
  chunkSize?: number;
  /**
   * Aborted while the open waits for the capture's first bytes (a pipe nobody writes yet): the
   * wait ends and the open fails as for an input that ended there (ByteSource.abort).
   */
  signal?: AbortSignal;
}

/** A capture being read. */
export interface CaptureReader {
  readonly format: 'pcap' | 'pcapng';
  /** Name used in messages: the path, or "stdin". */
  readonly label: string;
  /** Grows as pcapng IDBs are read; ids are global across sections. */
  readonly interfaces: CaptureInterface[];
  /** Problems found, each with the byte offset (at most ~100 kept; see suppressedWarnings). */
  readonly warnings: ReaderWarning[];
  /** Warnings not kept because there were too many. */
  readonly suppressedWarnings: number;
  /** The input ended in the middle of a record or block. */
  readonly truncated: boolean;
  readonly bytesRead: number;
  /** File size when known (regular files), else null. */
  readonly totalBytes: number | null;
  /** pcapng blocks of types the draft does not define, skipped. */
  readonly unknownBlocks: number;
  /** Packet records that could not be delivered (oversize or malformed); each has a warning. */
  readonly skippedRecords: number;
  /** Frames delivered so far. */
  readonly frameCount: number;
  /**
   * Up to `max` frames, in input order; null at end of input. A batch may be shorter than `max`
   * when the buffered input runs out (so a live pipe is not held back waiting for more).
   * Frames' data are views into chunks the reader reuses only after recycleBefore says so.
   */
  nextBatch(max: number): Promise<CaptureFrame[] | null>;
  /**
   * The caller no longer uses frames delivered before `live` (the oldest frame it still holds, or
   * null for none): their memory may be reused for later input. Optional to call.
   */
  recycleBefore?(live: CaptureFrame | null): void;
  /**
   * Set by a consumer that holds frames between batches: called when nextBatch is waiting for
   * input that may be long in coming (a quiet pipe), so it can finish them now. Absent or never
   * called for files.
   */
  onStall?: (() => void) | null;
  /** onStall can be called (a pipe, a FIFO, a stream). */
  readonly canStall?: boolean;
  /** Release the file or stream. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_MAX_FRAME_LEN = 262144;
const DEFAULT_CHUNK_SIZE = 1 << 20;

class Reader implements CaptureReader {
  private done = false;
  private closed = false;

  constructor(
    readonly format: 'pcap' | 'pcapng',
    private readonly input: ChunkedInput,
    private readonly parser: FormatParser,
    private readonly state: ReaderState,
  ) {}

  get label(): string { return this.state.label; }
  get interfaces(): CaptureInterface[] { return this.state.interfaces; }
  get warnings(): ReaderWarning[] { return this.state.warnings; }
  get suppressedWarnings(): number { return this.state.suppressedWarnings; }
  get truncated(): boolean { return this.state.truncated; }
  get bytesRead(): number { return this.input.bytesRead; }
  get totalBytes(): number | null { return this.state.totalBytes; }
  get unknownBlocks(): number { return this.state.unknownBlocks; }
  get skippedRecords(): number { return this.state.skippedRecords; }
  get frameCount(): number { return this.state.frameCount; }
  get canStall(): boolean { return this.input.canStall; }
  set onStall(f: (() => void) | null) { this.input.onStall = f; }

  async nextBatch(max: number): Promise<CaptureFrame[] | null> {
    if (this.done) return null;
    const limit = max >= 1 ? Math.floor(max) : 1;
    const out: CaptureFrame[] = [];
    const inp = this.input;
    for (;;) {
      const r = this.parser.parse(out, limit);
      if (r === PARSE_FULL) break;
      if (r === PARSE_STOP) {
        await this.finish();
        break;
      }
      if (r === PARSE_SKIP) {
        const at = inp.offset;
        if (!(await inp.skip(this.parser.skipBytes))) {
          this.state.truncated = true;
          this.state.warn(at, `truncated block at byte offset ${at} (input ended while skipping it)`, true);
          await this.finish();
          break;
        }
        continue;
      }
      // r > 0: the next record needs r bytes; hand out what we have before waiting for input
      // (a read already in is not waiting: from a pipe, batches then fill as from a file)
      if (out.length > 0 && !inp.moreReady) break;
      if (!(await inp.ensure(r))) {
        const tail = inp.end - inp.pos;
        if (tail > 0) {
          this.state.truncated = true;
          this.state.warn(inp.offset, `truncated record at byte offset ${inp.offset} (${tail} of ${r} bytes present)`, true);
        }
        await this.finish();
        break;
      }
    }
    return out.length > 0 ? out : null;
  }

  recycleBefore(live: CaptureFrame | null): void {
    this.input.recycleBefore(live === null ? null : live.data);
  }

  private async finish(): Promise<void> {
    this.done = true;
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.done = true;
    await this.input.close();
  }
}

function describeStart(b: Buffer): string {
  const head = b.subarray(0, Math.min(8, b.length));
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip-compressed data; decompress it first';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd-compressed data; decompress it first';
  let printable = true;
  for (const c of head) if (c < 0x20 || c > 0x7e) printable = false;
  if (printable) return `starts with '${head.toString('latin1')}'`;
  return `starts with 0x${head.toString('hex')}`;
}

/** Open a capture from any byte source (capture/input.ts); `label` names it in messages. */
export async function openSource(
  source: ByteSource,
  label: string,
  totalBytes: number | null,
  opts: OpenOptions,
): Promise<CaptureReader> {
  const maxFrameLen = opts.maxFrameLen !== undefined && opts.maxFrameLen > 0 ? Math.floor(opts.maxFrameLen) : DEFAULT_MAX_FRAME_LEN;
  const input = new ChunkedInput(source, opts.chunkSize !== undefined && opts.chunkSize > 0 ? opts.chunkSize : DEFAULT_CHUNK_SIZE);
  const signal = opts.signal;
  const onAbort = (): void => source.abort?.();
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    await input.ensure(PCAP_HEADER_LEN);
    const avail = input.end - input.pos;
    if (avail === 0) throw new CaptureFormatError(`${label}: empty file, not a pcap or pcapng capture`);
    if (avail < 4) throw new CaptureFormatError(`${label}: not a pcap or pcapng file (only ${avail} bytes)`);
    const p0 = input.pos; // 0 unless the input reads ahead into a chunk with headroom
    const first = input.dv.getUint32(p0, true);
    const state = new ReaderState(label, maxFrameLen, totalBytes);
    const magic = pcapMagic(first);
    if (magic !== null) {
      if (avail < PCAP_HEADER_LEN) {
        throw new CaptureFormatError(`${label}: truncated pcap file header (${avail} of ${PCAP_HEADER_LEN} bytes)`);
      }
      const major = input.dv.getUint16(p0 + 4, magic.le);
      if (major !== 2) state.warn(4, `pcap version ${major}.${input.dv.getUint16(p0 + 6, magic.le)} (expected 2.4); reading anyway`);
      const parser = new PcapParser(input, state, magic);
      parser.readHeader(magic);
      return new Reader('pcap', input, parser, state);
    }
    if (first === BT_SHB) {
      if (avail < 12) throw new CaptureFormatError(`${label}: truncated pcapng section header (${avail} bytes)`);
      const bom = input.dv.getUint32(p0 + 8, true);
      if (bom !== BYTE_ORDER_MAGIC && bom !== 0x4d3c2b1a) {
        throw new CaptureFormatError(`${label}: not a pcapng file (section header with byte-order magic 0x${bom.toString(16)})`);
      }
      return new Reader('pcapng', input, new PcapngParser(input, state), state);
    }
    if (first === PCAP_MAGIC_MODIFIED || first === 0x34cdb2a1) {
      throw new CaptureFormatError(`${label}: modified (Kuznetzov) pcap is not supported; convert it with 'editcap -F pcap'`);
    }
    throw new CaptureFormatError(`${label}: not a pcap or pcapng file (${describeStart(input.buf.subarray(input.pos, input.end))})`);
  } catch (e) {
    await input.close().catch(() => undefined);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Open a capture file (or standard input for `'-'`) and recognise its format by content.
 * @param input a path, or `'-'` for stdin.
 * @throws CaptureFormatError (code `ERR_CAPTURE_FORMAT`) when the input is not a capture;
 *   Node's system errors (`ENOENT`, `EACCES`, `EISDIR`) as they are.
 * @example
 * const r = await openCapture('in.pcapng');
 * for (let b = await r.nextBatch(256); b; b = await r.nextBatch(256)) for (const f of b) use(f);
 */
export async function openCapture(input: string, opts: OpenOptions = {}): Promise<CaptureReader> {
  if (input === '-') {
    // a pipe or a file: read from the descriptor (the pipe made larger), with the addon on
    // Linux (input.ts: FdSource); a terminal, a socket, or no addon: through process.stdin
    let direct = false;
    try {
      const st = fstatSync(0);
      direct = (st.isFIFO() || st.isFile()) && FdSource.usable(0);
      if (direct) growPipe(0);
    } catch {
      direct = false;
    }
    return direct ? openSource(new FdSource(0), 'stdin', null, opts) : openCaptureStream(process.stdin, 'stdin', opts);
  }
  const pre = await fsStat(input).catch(() => null); // a missing file: the open below says so
  if (pre !== null && pre.isFIFO() && FdSource.usable()) {
    // A named pipe: read like standard input (input.ts: FdSource), the pipe made larger. Opened
    // without waiting for a writer: a blocking open waits in libuv's pool, and that outlives
    // even a second Ctrl-C until some writer opens the pipe; FdSource waits for bytes on the event loop.
    const fifo = await fsOpen(input, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    growPipe(fifo.fd);
    return openSource(new FdSource(fifo.fd, () => fifo.close()), input, null, opts);
  }
  const fh = await fsOpen(input, 'r');
  let size: number | null = null;
  try {
    const st = await fh.stat();
    if (st.isFile()) size = st.size;
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
  return openSource(new FileSource(fh, size !== null), input, size, opts);
}

/**
 * Read a capture from a stream (stdin, a pipe, a live source) or any (async) iterable of byte
 * chunks, of any sizes. `label` names it in messages.
 * @throws CaptureFormatError when the input is not a capture.
 */
export function openCaptureStream(
  stream: NodeJS.ReadableStream | AsyncIterable<Buffer | Uint8Array> | Iterable<Uint8Array>,
  label: string,
  opts: OpenOptions = {},
): Promise<CaptureReader> {
  return openSource(new IterableSource(stream), label, null, opts);
}
