/**
 * Live capture: a {@link CaptureReader} over the optional `cap` binding (libpcap).
 *
 * `cap` is an optionalDependency built with node-gyp against libpcap; it is imported lazily
 * (dynamic import inside try/catch) so that every other command works where it is missing.
 *
 * How frames flow: libpcap hands each packet to cap's 'packet' event, which copies it into one
 * shared buffer; the handler copies it out at once into chunk memory that is never reused (the
 * reader contract: frames' data stay valid while referenced) and queues it. `nextBatch(max)`
 * resolves with the frames queued so far (up to max), or waits for the first one; after a short
 * idle timeout it resolves with an empty batch so the pipeline can look at its stop flag.
 *
 * Stopping: `stop()` closes the capture handle; the frames already queued are still handed out,
 * then `nextBatch` returns null (a normal end of input). `abort()` also drops the queue.
 * A count limit (`count`) stops the capture after that many frames.
 *
 * cap gives no packet timestamps, so frames are stamped on arrival in the handler (nanosecond
 * resolution: wall clock at open + the monotonic clock since); the original length is the
 * captured length (cap's snap length is 65535).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { CaptureReader } from './reader.js';
import type { CaptureFrame, CaptureInterface, ReaderWarning } from './types.js';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_IEEE802_11_RADIOTAP,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_NULL,
  LINKTYPE_RAW,
} from './linktypes.js';

/** The subset of cap's API used here. */
interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  close(): boolean;
  on(ev: 'packet', fn: (nbytes: number, truncated: boolean) => void): unknown;
  removeAllListeners(ev?: string): unknown;
}
interface CapDevice {
  name: string;
  description?: string;
  addresses?: { addr?: string; netmask?: string; broadaddr?: string }[];
  flags?: string;
}
interface CapModule {
  Cap: { new (): CapHandle; deviceList(): CapDevice[]; findDevice(ip?: string): string | undefined };
}

/** Where the package is installed (dist/src/capture → package root), for the rebuild hint. */
const PKG_DIR = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

/** Install/rebuild hint shown when `cap` cannot be loaded (one line). */
export const CAP_INSTALL_HINT =
  "live capture needs the optional 'cap' package built against libpcap: install libpcap-dev " +
  '(Debian/Ubuntu; libpcap-devel on Fedora) and a C++ toolchain (build-essential), then run ' +
  `\`npm rebuild cap\` in ${PKG_DIR} (\`npm install\` there if cap is missing)`;

/** `cap` is not installed, or its native part is not built / built for another Node. */
export class CapUnavailableError extends Error {
  readonly code = 'ERR_CAP_UNAVAILABLE';
  /** The underlying loader message (for --verbose style diagnostics and tests). */
  readonly reason: string;
  constructor(reason: string) {
    super(CAP_INSTALL_HINT);
    this.name = 'CapUnavailableError';
    this.reason = reason;
  }
}

export type LiveErrorKind = 'permission' | 'no-device' | 'filter' | 'other';

/** Opening the live capture failed; `message` is one line meant for the user. */
export class LiveCaptureError extends Error {
  readonly code = 'ERR_LIVE_CAPTURE';
  readonly kind: LiveErrorKind;
  /** libpcap's own message. */
  readonly pcapMessage: string;
  constructor(kind: LiveErrorKind, message: string, pcapMessage: string) {
    super(message);
    this.name = 'LiveCaptureError';
    this.kind = kind;
    this.pcapMessage = pcapMessage;
  }
}

let capPromise: Promise<CapModule> | null = null;

/**
 * Load `cap` once. The module name can be overridden with IPSECOV2_CAP_MODULE (tests use a name
 * that does not exist to exercise the "not installed" path).
 * @throws CapUnavailableError
 */
export function loadCap(): Promise<CapModule> {
  if (capPromise) return capPromise;
  const name = process.env.IPSECOV2_CAP_MODULE || 'cap';
  capPromise = (async (): Promise<CapModule> => {
    try {
      // A non-literal specifier: TypeScript does not resolve it, so the build never needs cap.
      // require, not import(): cap is CommonJS, and the bundle runs as a vm.Script (bin/ipsecov2),
      // which has no loader for import().
      const ns = createRequire(import.meta.url)(name) as { default?: CapModule } & Partial<CapModule>;
      const m = (ns.default ?? ns) as CapModule;
      if (!m || typeof m.Cap !== 'function') throw new Error(`'${name}' does not export Cap`);
      return m;
    } catch (e) {
      throw new CapUnavailableError(firstLine((e as Error)?.message ?? String(e)));
    }
  })();
  return capPromise;
}

/** Whether live capture is available (cap loads). */
export async function liveCaptureAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await loadCap();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: e instanceof CapUnavailableError ? e.reason : String(e) };
  }
}

function firstLine(s: string): string {
  const l = s.split('\n').find((x) => x.trim() !== '') ?? s;
  return l.trim();
}

/** One capture interface as listed by `live --list`. */
export interface LiveInterfaceInfo {
  name: string;
  description: string | null;
  addresses: string[];
  flags: string | null;
}

/** The interfaces libpcap can capture on. @throws CapUnavailableError */
export async function listInterfaces(): Promise<LiveInterfaceInfo[]> {
  const cap = await loadCap();
  let devs: CapDevice[];
  try {
    devs = cap.Cap.deviceList();
  } catch (e) {
    throw classifyOpenError(firstLine((e as Error).message ?? String(e)), '(all)', '');
  }
  return devs.map((d) => ({
    name: d.name,
    description: d.description ? d.description : null,
    addresses: (d.addresses ?? []).map((a) => (a.addr ? (a.netmask ? `${a.addr}/${maskBits(a.netmask)}` : a.addr) : '')).filter((s) => s !== ''),
    flags: d.flags ? d.flags : null,
  }));
}

function maskBits(mask: string): string {
  if (mask.includes('.')) {
    let n = 0;
    for (const p of mask.split('.')) n += bitCount(Number(p) & 0xff);
    return String(n);
  }
  let n = 0;
  for (const g of mask.split(':')) if (g) n += bitCount(parseInt(g, 16) & 0xffff);
  return String(n);
}

function bitCount(v: number): number {
  let n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}

/** cap's link-type names (and "Unknown linktype N") → LINKTYPE_* numbers. */
export function capLinkType(s: string): number | null {
  switch (s) {
    case 'ETHERNET': return LINKTYPE_ETHERNET;
    case 'NULL': return LINKTYPE_NULL;
    case 'RAW': return LINKTYPE_RAW;
    case 'LINKTYPE_LINUX_SLL': return LINKTYPE_LINUX_SLL;
    case 'IEEE802_11_RADIO': return LINKTYPE_IEEE802_11_RADIOTAP;
  }
  const m = /^Unknown linktype (\d+)$/.exec(s);
  if (!m) return null;
  const dlt = Number(m[1]);
  // DLT_RAW is 12 or 14 depending on the platform; other DLT values ≥ 104 equal LINKTYPE values.
  if (dlt === 12 || dlt === 14) return LINKTYPE_RAW;
  return dlt;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function classifyOpenError(msg: string, device: string, filter: string): LiveCaptureError {
  const m = msg || 'unknown libpcap error';
  if (/permission|not permitted|CAP_NET_RAW|EPERM|EACCES|Operation not permitted|access denied/i.test(m)) {
    const how = isRoot()
      ? 'root without CAP_NET_RAW (a restricted container?); capture needs CAP_NET_RAW and CAP_NET_ADMIN'
      : 'run as root (sudo), or grant node the capability: sudo setcap cap_net_raw,cap_net_admin=eip "$(readlink -f "$(command -v node)")"';
    return new LiveCaptureError('permission', `no permission to capture on ${device}: ${how}`, m);
  }
  if (/no such device|doesn't exist|does not exist|SIOCGIFINDEX|no suitable device|not up/i.test(m)) {
    return new LiveCaptureError('no-device', `${device}: no such capture interface (${m}); see 'ipsecov2 live --list'`, m);
  }
  if (filter && /syntax error|filter|parse|unknown host|unknown (port|protocol)|illegal|expression/i.test(m)) {
    return new LiveCaptureError('filter', `capture filter '${filter}': ${m}`, m);
  }
  return new LiveCaptureError('other', `cannot capture on ${device}: ${m}`, m);
}

export interface LiveCaptureOptions {
  /** Interface name (as in `live --list`). */
  device: string;
  /** BPF capture filter ('' = none). */
  filter?: string;
  /** Stop after this many frames (undefined or 0 = no limit). */
  count?: number;
  /** Kernel capture buffer size in bytes (default 8 MiB). */
  bufferSize?: number;
  /** Idle timeout of nextBatch in ms before it resolves with an empty batch (default 200). */
  idleMs?: number;
  /** Frames queued but not yet handed to the pipeline beyond which new ones are dropped (default 65536). */
  maxQueued?: number;
}

const CHUNK_SIZE = 1 << 20;
const SNAPLEN_BUF = 65536 + 4096;

/** Handles whose open() failed: cap cannot close them safely, so they are kept from the GC. */
const leakedHandles: CapHandle[] = [];

/** A live capture being read. */
export class LiveCaptureReader implements CaptureReader {
  readonly format = 'pcapng' as const;
  readonly label: string;
  readonly interfaces: CaptureInterface[];
  readonly warnings: ReaderWarning[] = [];
  readonly suppressedWarnings = 0;
  readonly truncated = false;
  readonly totalBytes = null;
  readonly unknownBlocks = 0;
  readonly skippedRecords = 0;
  bytesRead = 0;
  /** Frames handed out so far. */
  frameCount = 0;
  /** Frames received from libpcap (queued or handed out). */
  received = 0;
  /** Frames dropped because the pipeline fell behind (queue over maxQueued). */
  queueDrops = 0;
  /** Frames libpcap delivered cut to cap's buffer. */
  cutShort = 0;
  /** The name of the link type libpcap reported. */
  readonly linkTypeName: string;

  private readonly cap: CapHandle;
  private readonly capBuf: Buffer;
  private chunk: Buffer = Buffer.allocUnsafe(CHUNK_SIZE);
  private chunkPos = 0;
  private queue: CaptureFrame[] = [];
  private qHead = 0;
  private capturing = true;
  private aborted = false;
  private waiter: (() => void) | null = null;
  private readonly count: number;
  private readonly idleMs: number;
  private readonly maxQueued: number;
  private readonly wallNs0: bigint;
  private readonly hr0: bigint;

  /** @internal use {@link openLiveCapture}. */
  constructor(cap: CapHandle, capBuf: Buffer, device: string, description: string | null, linkType: number, linkTypeName: string, opts: LiveCaptureOptions) {
    this.cap = cap;
    this.capBuf = capBuf;
    this.label = `live:${device}`;
    this.linkTypeName = linkTypeName;
    this.interfaces = [{ linkType, snapLen: 65535, name: device, description, tsResol: 9, tsOffset: 0 }];
    this.count = opts.count && opts.count > 0 ? Math.floor(opts.count) : 0;
    this.idleMs = opts.idleMs ?? 200;
    this.maxQueued = opts.maxQueued ?? 65536;
    this.hr0 = process.hrtime.bigint();
    this.wallNs0 = BigInt(Date.now()) * 1_000_000n;
    cap.on('packet', (n, truncated) => this.onPacket(n, truncated));
  }

  /** Capture still running (not stopped, count not reached). */
  get running(): boolean {
    return this.capturing;
  }

  /** Frames waiting to be handed out. */
  get queued(): number {
    return this.queue.length - this.qHead;
  }

  private onPacket(n: number, truncated: boolean): void {
    if (!this.capturing) return;
    const ns = this.wallNs0 + (process.hrtime.bigint() - this.hr0);
    this.received++;
    if (truncated) this.cutShort++;
    if (this.queued >= this.maxQueued) {
      this.queueDrops++;
    } else {
      if (this.chunkPos + n > this.chunk.length) {
        this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_SIZE, n));
        this.chunkPos = 0;
      }
      const data = this.chunk.subarray(this.chunkPos, this.chunkPos + n);
      this.capBuf.copy(data, 0, 0, n);
      this.chunkPos += (n + 7) & ~7;
      this.queue.push({
        index: 0,
        ifId: 0,
        tsHi: Number(ns >> 32n),
        tsLo: Number(ns & 0xffffffffn),
        data,
        origLen: n,
        comment: null,
        epbFlags: null,
      });
    }
    if (this.count && this.received >= this.count) this.stopCapture();
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w();
    }
  }

  private stopCapture(): void {
    if (!this.capturing) return;
    this.capturing = false;
    try {
      this.cap.close();
    } catch {
      /* already closed */
    }
    this.cap.removeAllListeners('packet');
  }

  /** Stop capturing; frames already received are still handed out, then nextBatch returns null. */
  stop(): void {
    this.stopCapture();
    this.wake();
  }

  /** Stop capturing and drop the frames not yet handed out. */
  abort(): void {
    this.aborted = true;
    this.stopCapture();
    this.queue = [];
    this.qHead = 0;
    this.wake();
  }

  async nextBatch(max: number): Promise<CaptureFrame[] | null> {
    const limit = max >= 1 ? Math.floor(max) : 1;
    if (this.queued === 0) {
      if (!this.capturing || this.aborted) return null;
      await new Promise<void>((res) => {
        const t = setTimeout(() => {
          if (this.waiter === done) this.waiter = null;
          res();
        }, this.idleMs);
        const done = (): void => {
          clearTimeout(t);
          res();
        };
        this.waiter = done;
      });
      if (this.queued === 0) return this.capturing && !this.aborted ? [] : null;
    }
    const end = Math.min(this.queue.length, this.qHead + limit);
    const out = this.queue.slice(this.qHead, end);
    this.qHead = end;
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    } else if (this.qHead > 4096) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    for (const f of out) {
      f.index = ++this.frameCount;
      this.bytesRead += f.data.length;
    }
    return out;
  }

  async close(): Promise<void> {
    this.abort();
  }
}

/**
 * Open a live capture on `device` (promiscuous, immediate mode, as cap sets it up).
 * @throws CapUnavailableError when `cap` cannot be loaded; LiveCaptureError (kind permission,
 *   no-device, filter, other) when libpcap refuses.
 */
export async function openLiveCapture(opts: LiveCaptureOptions): Promise<LiveCaptureReader> {
  const cap = await loadCap();
  const c = new cap.Cap();
  const buf = Buffer.alloc(SNAPLEN_BUF);
  const filter = opts.filter ?? '';
  let lt: string;
  try {
    lt = c.open(opts.device, filter, opts.bufferSize ?? 8 << 20, buf);
  } catch (e) {
    // cap 0.2.1 cannot close a handle whose open() failed (it would stop a libuv poll handle
    // that was never started); keep it away from the garbage collector instead.
    leakedHandles.push(c);
    throw classifyOpenError(firstLine((e as Error)?.message ?? String(e)), opts.device, filter);
  }
  const linkType = capLinkType(lt);
  if (linkType === null) {
    try { c.close(); } catch { /* ignore */ }
    throw new LiveCaptureError('other', `${opts.device}: unsupported link type (${lt})`, lt);
  }
  let description: string | null = null;
  try {
    description = cap.Cap.deviceList().find((d) => d.name === opts.device)?.description ?? null;
  } catch {
    description = null;
  }
  return new LiveCaptureReader(c, buf, opts.device, description, linkType, lt, opts);
}
