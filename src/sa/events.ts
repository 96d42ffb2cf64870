/**
 * The `events:` section of the SA file: ADD_SA / UPDATE_SA / DELETE_SA at a frame number or a
 * capture time (spec/sa-file.md; spec/ipsecov2.md §3.6–3.7).
 */

import { isScalar } from 'yaml';
import type { Node } from 'yaml';
import { readBundle } from './bundle.js';
import type { ParsedBundle } from './bundle.js';
import type { KeyContext } from './keys.js';
import type { EventAt, SaEvent } from './model.js';
import { describe, joinPath } from './reader.js';
import type { Reader } from './reader.js';

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * Parse an RFC 3339 timestamp with up to nanosecond precision into ns since the Unix epoch.
 * Returns null when the text is not one.
 */
export function parseTimeNs(text: string): bigint | null {
  const m = TIME_RE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  if (Number.isNaN(ms) || check.getUTCDate() !== Number(d) || check.getUTCHours() !== Number(h) || Number(s) > 59) return null;
  let offsetMin = 0;
  if (tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    offsetMin = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2)));
  }
  const ns = BigInt(ms - offsetMin * 60000) * 1_000_000n + BigInt((frac ?? '').padEnd(9, '0') || '0');
  return ns;
}

/** Events in file order, the parsed add bundles, and each event's node (for messages). */
export interface ReadEvents {
  events: SaEvent[];
  adds: ParsedBundle[];
  nodes: Node[];
}

function readAt(r: Reader, node: Node | undefined, path: string, parent: Node): EventAt | null {
  if (!node) {
    r.error(path, parent, 'at: missing: { frame: N } or { time: "2026-11-21T10:00:00.5Z" }');
    return null;
  }
  const f = r.fields(node, path, ['frame', 'time']);
  if (!f) return null;
  const hasFrame = r.get(f, 'frame') !== undefined;
  const hasTime = r.get(f, 'time') !== undefined;
  if (hasFrame === hasTime) {
    r.error(path, node, 'at: needs exactly one of frame: or time:');
    return null;
  }
  if (hasFrame) {
    const frame = r.int(f, 'frame', 1, Number.MAX_SAFE_INTEGER);
    return frame === undefined ? null : { frame };
  }
  const tNode = r.get(f, 'time')!;
  const text = isScalar(tNode) && typeof tNode.value === 'string' ? tNode.value : null;
  const ns = text !== null ? parseTimeNs(text) : null;
  if (ns === null) {
    r.error(joinPath(path, 'time'), tNode, `${describe(tNode)} is not an RFC 3339 time such as "2026-11-21T10:00:00.5Z" (quote it in YAML)`);
    return null;
  }
  return { time: text!, ns };
}

/** Read `events:`. Add bundles get handles and names later (load.ts). */
export function readEvents(r: Reader, node: Node, kctx: KeyContext): ReadEvents {
  const out: ReadEvents = { events: [], adds: [], nodes: [] };
  const items = r.seq(node, 'events');
  if (!items) return out;
  items.forEach((item, i) => {
    const path = joinPath('events', i);
    const f = r.fields(item, path, ['at', 'add', 'update', 'delete'], 'an event (mapping)');
    if (!f) return;
    const at = readAt(r, r.get(f, 'at'), joinPath(path, 'at'), item);
    const kinds = (['add', 'update', 'delete'] as const).filter((k) => f.values.has(k));
    if (kinds.length !== 1) {
      r.error(path, item, kinds.length ? `one event does one thing; found ${kinds.join(' and ')} (write separate events)` : 'an event needs add:, update: or delete:');
      return;
    }
    const kind = kinds[0];
    const body = r.get(f, kind);
    const bpath = joinPath(path, kind);
    if (!body) {
      r.error(bpath, f.keys.get(kind), `${kind}: is empty`);
      return;
    }
    if (kind === 'add') {
      const pb = readBundle(r, body, bpath, kctx);
      if (pb && at) {
        out.adds.push(pb);
        out.events.push({ at, kind: 'add', bundle: pb.bundle });
        out.nodes.push(item);
      }
      return;
    }
    const bf = r.fields(body, bpath, kind === 'update' ? ['sa', 'spi', 'high'] : ['sa']);
    if (!bf) return;
    const sa = r.str(bf, 'sa');
    if (sa === undefined && !bf.values.has('sa')) r.error(joinPath(bpath, 'sa'), body, 'sa: missing (the name of the bundle)');
    if (kind === 'delete') {
      if (sa !== undefined && at) {
        out.events.push({ at, kind: 'delete', sa });
        out.nodes.push(item);
      }
      return;
    }
    const spiNode = r.get(bf, 'spi');
    const spi = spiNode ? (r.intNode(spiNode, joinPath(bpath, 'spi'), 1, 0xffffffff, true) ?? null) : null;
    const high = r.int(bf, 'high', 0, 0xffffffff, true);
    if (r.get(bf, 'high') === undefined) r.error(joinPath(bpath, 'high'), body, 'high: missing (the new ESN high-order 32 bits)');
    if (sa !== undefined && high !== undefined && at) {
      out.events.push({ at, kind: 'update', sa, spi, high });
      out.nodes.push(item);
    }
  });
  return out;
}
