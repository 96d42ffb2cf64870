/**
 * Timestamps of capture frames. A frame carries its time as two unsigned 32-bit halves
 * (`tsHi`, `tsLo`) counted in units of its interface's `if_tsresol` (draft-ietf-opsawg-pcapng
 * §4.2: high bit clear = 10^-n s, set = 2^-n s), plus the interface's `if_tsoffset` seconds.
 *
 * The common cases (decimal resolutions up to nanoseconds) are computed with exact double
 * arithmetic on 16/32-bit pieces; BigInt is used only for binary resolutions and finer-than-ns
 * decimals. Nothing here throws for any 64-bit input.
 */
import type { CaptureInterface } from './types.js';

const TWO32 = 4294967296;
const NS_PER_S = 1_000_000_000n;
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** Scratch result of {@link divmod64}: [quotient, remainder]. */
const DIV = new Float64Array(2);

/**
 * (hi·2^32 + lo) divided by p (1 ≤ p ≤ 10^9), by long division on 16-bit digits so every
 * intermediate stays below 2^53. Result in DIV[0] (quotient, exact below 2^53) and DIV[1].
 */
function divmod64(hi: number, lo: number, p: number): void {
  let q1 = Math.floor(hi / p);
  let r = hi - q1 * p;
  let t = r * 65536 + (lo >>> 16);
  let q2 = Math.floor(t / p);
  r = t - q2 * p;
  if (r < 0) { q2 -= 1; r += p; }
  t = r * 65536 + (lo & 0xffff);
  let q3 = Math.floor(t / p);
  r = t - q3 * p;
  if (r < 0) { q3 -= 1; r += p; }
  if (q1 < 0) q1 = 0;
  DIV[0] = q1 * TWO32 + q2 * 65536 + q3;
  DIV[1] = r;
}

/**
 * Interface units → nanoseconds since the Unix epoch, exact (floored below 1 ns), including
 * `tsOffset`.
 * @param iface the frame's interface (tsResol, tsOffset are used).
 * @example tsToNs({ ...eth, tsResol: 6, tsOffset: 0 }, 0, 1_500_000) // 1_500_000_000n
 */
export function tsToNs(iface: CaptureInterface, tsHi: number, tsLo: number): bigint {
  const units = (BigInt(tsHi >>> 0) << 32n) | BigInt(tsLo >>> 0);
  const res = iface.tsResol & 0xff;
  let ns: bigint;
  if (res & 0x80) {
    // binary resolution 2^-n s: floor(units · 10^9 / 2^n)
    ns = (units * NS_PER_S) >> BigInt(res & 0x7f);
  } else if (res <= 9) {
    ns = units * 10n ** BigInt(9 - res);
  } else {
    ns = units / 10n ** BigInt(res - 9);
  }
  const off = iface.tsOffset;
  if (off !== 0 && Number.isFinite(off)) ns += BigInt(Math.trunc(off)) * NS_PER_S;
  return ns;
}

/** Scratch result of {@link tsToSecFrac}: [seconds, fraction]. */
export const SEC_FRAC = new Float64Array(2);

/**
 * Interface units → whole seconds (SEC_FRAC[0], floored) and fraction in 10^-digits units
 * (SEC_FRAC[1], floored), with tsOffset applied. Used by the ISO formatter and the pcap writer.
 * @param digits 6 (µs) or 9 (ns).
 */
export function tsToSecFrac(
  iface: CaptureInterface,
  tsHi: number,
  tsLo: number,
  digits: 6 | 9,
): void {
  const res = iface.tsResol;
  if (res <= 9 && res >= 0) {
    // decimal fast path: exact on doubles
    divmod64(tsHi >>> 0, tsLo >>> 0, POW10[res]);
    let sec = DIV[0];
    let frac = DIV[1];
    if (digits >= res) frac *= POW10[digits - res];
    else frac = Math.floor(frac / POW10[res - digits]);
    const off = iface.tsOffset;
    if (off !== 0 && Number.isFinite(off)) sec += Math.trunc(off);
    SEC_FRAC[0] = sec;
    SEC_FRAC[1] = frac;
    return;
  }
  const ns = tsToNs(iface, tsHi, tsLo);
  let sec = ns / NS_PER_S;
  let rem = ns - sec * NS_PER_S;
  if (rem < 0n) { sec -= 1n; rem += NS_PER_S; }
  SEC_FRAC[0] = Number(sec);
  SEC_FRAC[1] = digits === 9 ? Number(rem) : Math.floor(Number(rem) / 1000);
}

let cacheSec = Number.NaN;
let cachePrefix = '';

function pad(n: number, width: number): string {
  let s = String(n);
  while (s.length < width) s = '0' + s;
  return s;
}

/**
 * "YYYY-MM-DDTHH:MM:SS" for whole seconds since the epoch, for any integer (proleptic
 * Gregorian; years outside 0..9999 written as ±YYYYYY like Date#toISOString). Uses Howard
 * Hinnant's civil_from_days, so it never throws where Date would (|t| > 8.64e15 ms).
 */
function isoSeconds(sec: number): string {
  const days = Math.floor(sec / 86400);
  const sod = sec - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const ys = y >= 0 && y <= 9999 ? pad(y, 4) : (y < 0 ? '-' : '+') + pad(Math.abs(y), 6);
  const hh = Math.floor(sod / 3600);
  const mm = Math.floor((sod - hh * 3600) / 60);
  const ss = sod - hh * 3600 - mm * 60;
  return `${ys}-${pad(m, 2)}-${pad(d, 2)}T${pad(hh, 2)}:${pad(mm, 2)}:${pad(ss, 2)}`;
}

/**
 * A frame's time as RFC 3339 UTC with exactly nine fractional digits,
 * e.g. `"2026-11-21T10:00:00.123456789Z"`. Honours tsOffset and binary resolutions (floored to
 * the nanosecond). The date part is cached per second, so consecutive frames cost one division
 * and one short string.
 * @param iface the frame's interface.
 */
export function tsToIso(iface: CaptureInterface, tsHi: number, tsLo: number): string {
  tsToSecFrac(iface, tsHi, tsLo, 9);
  const sec = SEC_FRAC[0];
  if (sec !== cacheSec) {
    cacheSec = sec;
    cachePrefix = isoSeconds(sec) + '.';
  }
  return cachePrefix + String(1_000_000_000 + SEC_FRAC[1]).slice(1) + 'Z';
}

/** "00".."99" as bytes: decimal output two digits per division. */
export const DIGIT_PAIRS: Uint8Array = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''), 'latin1');

/** Upper bound of {@link writeIsoTs}'s output in bytes (years of any 64-bit timestamp fit). */
export const ISO_TS_MAX = 64;

/** Date part cache of writeIsoTs: the second it is for and its bytes ("…T12:34:56."). */
let bytesSec = Number.NaN;
let bytesPrefix: Uint8Array = new Uint8Array(0);
/**
 * Fast path of writeIsoTs: frames of the same second on the same interface (decimal resolution,
 * no offset) differ only in the low word. The last second seen: its interface, tsHi, first tsLo
 * (may be negative), length in units, and units → ns factor.
 */
let fastIface: CaptureInterface | null = null;
let fastHi = 0;
let fastLo = 0;
let fastSpan = 0;
let fastMul = 0;

/**
 * The nine fraction digits of {@link tsToIso} as a number (0..999 999 999); the date part up to
 * the '.' is then {@link isoTsPrefix} (encoded once per second).
 */
export function isoTsFrac(iface: CaptureInterface, tsHi: number, tsLo: number): number {
  let f: number;
  const rel = tsLo - fastLo;
  if (iface === fastIface && tsHi === fastHi && rel >= 0 && rel < fastSpan) {
    f = rel * fastMul;
  } else {
    tsToSecFrac(iface, tsHi, tsLo, 9);
    const sec = SEC_FRAC[0];
    f = SEC_FRAC[1];
    if (sec !== bytesSec) {
      bytesSec = sec;
      bytesPrefix = Buffer.from(isoSeconds(sec) + '.', 'latin1');
    }
    const res = iface.tsResol;
    if (res >= 0 && res <= 9 && iface.tsOffset === 0) {
      // the units of this second are [tsLo - frac/mul, + 10^res) (the start may lie in the
      // previous tsHi: only frames with this tsHi ever match)
      fastMul = POW10[9 - res]!;
      fastIface = iface;
      fastHi = tsHi;
      fastLo = tsLo - f / fastMul;
      fastSpan = POW10[res]!;
    } else fastIface = null;
  }
  return f;
}

/**
 * The date part (`…T12:34:56.`, bytes) of the time last given to {@link isoTsFrac}: a new array
 * for each new second, so its identity tells whether it changed.
 */
export function isoTsPrefix(): Uint8Array {
  return bytesPrefix;
}

/**
 * {@link tsToIso} written as bytes at `o` (at most ISO_TS_MAX); returns the end. The date part
 * is encoded once per second, only the nine fractional digits are written per frame.
 */
export function writeIsoTs(iface: CaptureInterface, tsHi: number, tsLo: number, dst: Uint8Array, o: number): number {
  let f = isoTsFrac(iface, tsHi, tsLo);
  dst.set(bytesPrefix, o);
  o += bytesPrefix.length;
  // nine digits: four pairs, then the leading one
  for (let i = 7; i > 0; i -= 2) {
    const q = (f / 100) | 0;
    const r = (f - q * 100) << 1;
    dst[o + i] = DIGIT_PAIRS[r]!;
    dst[o + i + 1] = DIGIT_PAIRS[r + 1]!;
    f = q;
  }
  dst[o] = 48 + f;
  dst[o + 9] = 90; // 'Z'
  return o + 10;
}

/**
 * Seconds and fraction (in 10^-digits s) → interface units as two 32-bit halves, exactly.
 * Writes TS_UNITS[0] = hi, TS_UNITS[1] = lo. Used by the pcap reader (sec · 10^6|9 + frac).
 */
export const TS_UNITS = new Float64Array(2);
export function secFracToUnits(sec: number, frac: number, p: number): void {
  // sec = sh·2^16 + sl; value = (sh·p)·2^16 + (sl·p + frac); every product < 2^53
  const b = (sec >>> 16) * p;
  const a = (sec & 0xffff) * p + frac;
  const bHi = Math.floor(b / 65536);
  const low = (b - bHi * 65536) * 65536 + a;
  const carry = Math.floor(low / TWO32);
  TS_UNITS[0] = bHi + carry;
  TS_UNITS[1] = low - carry * TWO32;
}
