/**
 * The SA file loader (spec/sa-file.md): YAML or JSON by content → SaDocument, with every error
 * of the file reported at once (`FILE:LINE:COL: sas[2].esp.encryptionKey: …`) in a SaFileError.
 *
 * Paths inside the document are 0-based (`sas[0]` is the first entry). Defaults: handle =
 * position (1-based), name `sa<handle>`, direction inbound, replayWindow 64, sequence next 1 /
 * high 0, GCM icvLength 16, NIC profile `full`.
 */

import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { Node } from 'yaml';
import { readBundle } from './bundle.js';
import type { ParsedBundle } from './bundle.js';
import { jsonSyntaxError } from './json-syntax.js';
import { checkPermissions, displayPath } from './keys.js';
export { displayPath };
import type { KeyContext } from './keys.js';
import type { Bundle, Diagnostic, SaDocument, SaEvent } from './model.js';
import { capabilityReason, decideOffload, profileFromName, readNic } from './nic.js';
import { Reader, joinPath } from './reader.js';
import { readEvents } from './events.js';

/** Options of loadSaFile / parseSaText. */
export interface LoadOptions {
  /** Environment for `{ env: NAME }` keys (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** NIC profile name from `--nic`; replaces the file's whole `nic:` section. */
  nicOverride?: string;
  /** Directory for `{ file: PATH }` keys (default: the SA file's directory). */
  baseDir?: string;
}

/** Format one diagnostic: `FILE:LINE:COL: [warning: ]PATH: MESSAGE` (no LINE:COL when unknown). */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line !== null ? `${d.file}:${d.line}:${d.col ?? 1}` : d.file;
  return `${where}: ${d.level === 'warning' ? 'warning: ' : ''}${d.path ? `${d.path}: ` : ''}${d.message}`;
}

/** The SA file is bad; `message` lists every error, one per line. */
export class SaFileError extends Error {
  readonly code = 'ERR_SA_FILE';
  /** All diagnostics found (errors and warnings). */
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[]) {
    super(diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic).join('\n'));
    this.name = 'SaFileError';
    this.diagnostics = diagnostics;
  }
}

function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => (a.d.line ?? Infinity) - (b.d.line ?? Infinity) || (a.d.col ?? 0) - (b.d.col ?? 0) || a.i - b.i)
    .map((x) => x.d);
}

/**
 * Read and check an SA file.
 * @throws SaFileError (code ERR_SA_FILE) listing every error; also when the file cannot be read.
 */
export function loadSaFile(path: string, opts: LoadOptions = {}): SaDocument {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SaFileError([{ level: 'error', file: path, path: '', line: null, col: null, message: `cannot read the SA file${code === 'ENOENT' ? ' (no such file)' : code ? ` (${code})` : ''}` }]);
  }
  const pre = new Reader(path, null, null);
  checkPermissions(pre, path, path, { path: '', node: null }, false);
  const doc = parseSaText(text, path, { baseDir: dirname(path), ...opts });
  doc.warnings.unshift(...pre.diagnostics);
  return doc;
}

/**
 * Parse SA-file text (YAML or JSON, chosen by content). `file` names it in messages.
 * @throws SaFileError listing every error.
 */
export function parseSaText(text: string, file: string, opts: LoadOptions = {}): SaDocument {
  const kctx: KeyContext = { baseDir: opts.baseDir ?? dirname(file), env: opts.env ?? process.env, text };
  const trimmed = text.replace(/^\uFEFF/, '').trimStart();
  const lineCounter = new LineCounter();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const err = jsonSyntaxError(text.replace(/^\uFEFF/, ''));
    if (err) {
      const r = new Reader(file, lineCounter, null);
      // Feed the line counter without keeping the document.
      parseDocument(text, { lineCounter });
      const at = r.locAt(err.offset + (text.startsWith('\uFEFF') ? 1 : 0));
      throw new SaFileError([{ level: 'error', file, path: '', ...at, message: err.message }]);
    }
  }
  const ydoc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const r = new Reader(file, lineCounter, ydoc);
  for (const e of ydoc.errors) {
    r.diagnostics.push({ level: 'error', file, path: '', ...r.locAt(e.pos[0]), message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (ydoc.errors.length) throw new SaFileError(r.diagnostics);

  const root = ydoc.contents as Node | null;
  if (r.isNull(root)) throw new SaFileError([{ level: 'error', file, path: '', line: null, col: null, message: 'empty SA file (expected version: 1 and sas: [...])' }]);
  const top = r.fields(root, '', ['version', 'nic', 'sas', 'events'], 'an SA file (a mapping with version, nic, sas, events)');
  if (!top) throw new SaFileError(r.diagnostics);

  const vNode = r.get(top, 'version');
  if (!vNode) r.warning('version', root, 'version missing; assuming version: 1');
  else if (r.intNode(vNode, 'version', 1, 1) === undefined) r.diagnostics[r.diagnostics.length - 1].message += ' (this program reads SA file version 1)';

  let nic = readNic(r, r.get(top, 'nic'));
  if (opts.nicOverride !== undefined) {
    try {
      nic = profileFromName(opts.nicOverride);
    } catch (e) {
      r.diagnostics.push({ level: 'error', file, path: '', line: null, col: null, message: `--nic: ${(e as Error).message}` });
    }
  }

  const parsed: ParsedBundle[] = [];
  const sasNode = r.get(top, 'sas');
  if (!top.values.has('sas')) r.warning('sas', root, 'no sas: list; the NIC has no SAs');
  else if (sasNode) {
    const items = r.seq(sasNode, 'sas') ?? [];
    items.forEach((item, i) => {
      const pb = readBundle(r, item, joinPath('sas', i), kctx);
      if (pb) parsed.push(pb);
    });
  }
  assignHandlesAndNames(r, parsed, 'position', []);

  const evNode = r.get(top, 'events');
  const { events, adds, nodes } = evNode ? readEvents(r, evNode, kctx) : { events: [] as SaEvent[], adds: [] as ParsedBundle[], nodes: [] as Node[] };
  assignHandlesAndNames(r, adds, 'next', parsed);
  crossChecks(r, parsed, adds, events, nodes);

  const errors = r.diagnostics.filter((d) => d.level === 'error');
  if (errors.length) throw new SaFileError(sortDiagnostics(r.diagnostics));

  const doc: SaDocument = { file, nic, bundles: parsed.map((p) => p.bundle), events, warnings: [] };
  decideOffload(doc);
  parsed.forEach((p) => {
    if (!p.bundle.offloaded) r.warning(p.path, p.node, `bundle "${p.bundle.name}" (handle ${p.bundle.handle}) is not offloaded: ${p.bundle.notOffloadedReason}; its packets pass through with CryptoDone=0`);
  });
  adds.forEach((p) => {
    const reason = capabilityReason(p.bundle, nic);
    p.bundle.offloaded = reason === null;
    p.bundle.notOffloadedReason = reason;
    if (reason) r.warning(p.path, p.node, `bundle "${p.bundle.name}" will not be offloaded when added: ${reason}`);
  });
  doc.warnings = sortDiagnostics(r.diagnostics);
  return doc;
}

/**
 * Default handles and names, and reject duplicates. `sas` entries default to their position
 * (1-based); added bundles to the next handle never used before (handles are never reused,
 * spec/ipsecov2.md §3.8). Names default to `sa<handle>`.
 */
function assignHandlesAndNames(r: Reader, list: ParsedBundle[], defaults: 'position' | 'next', earlier: ParsedBundle[]): void {
  const byHandle = new Map<number, ParsedBundle>(earlier.map((p) => [p.bundle.handle, p] as const));
  const byName = new Map<string, ParsedBundle>(earlier.map((p) => [p.bundle.name, p] as const));
  const explicit = new Set(list.map((p) => p.handle).filter((h): h is number => h !== null));
  let next = Math.max(0, ...byHandle.keys(), ...explicit) + 1;
  list.forEach((p, i) => {
    const handle = p.handle ?? (defaults === 'position' ? i + 1 : next++);
    const clash = byHandle.get(handle);
    if (clash) r.error(joinPath(p.path, 'handle'), p.fields.values.get('handle') ?? p.node, `handle ${handle} is already used by ${clash.path} ("${clash.bundle.name}")${p.handle === null ? ' (the default handle is the position; give one of them an explicit handle)' : ''}`);
    else byHandle.set(handle, p);
    p.bundle.handle = handle;
    const name = p.name ?? `sa${handle}`;
    const nclash = byName.get(name);
    if (nclash) r.error(joinPath(p.path, 'name'), p.fields.values.get('name') ?? p.node, `name "${name}" is already used by ${nclash.path}`);
    else byName.set(name, p);
    p.bundle.name = name;
  });
}

/** Outer destination of a bundle as text ('any' when unknown), for the duplicate-SPI check. */
function destinationKey(b: Bundle): string {
  if (b.tunnel) return b.tunnel.dst.toString('hex');
  if (b.selector.dst) return `${b.selector.dst.addr.toString('hex')}/${b.selector.dst.len}`;
  return 'any';
}

function crossChecks(r: Reader, parsed: ParsedBundle[], adds: ParsedBundle[], events: SaEvent[], nodes: Node[]): void {
  const all = [...parsed, ...adds];
  const byName = new Map(all.map((p) => [p.bundle.name, p] as const));
  for (const p of all) {
    const over = p.bundle.over;
    if (over === null) continue;
    const node = p.fields.values.get('over') ?? p.node;
    const target = byName.get(over);
    if (!target) r.error(joinPath(p.path, 'over'), node, `no bundle named "${over}"`);
    else if (target === p) r.error(joinPath(p.path, 'over'), node, 'a bundle cannot ride in itself');
    else if (target.bundle.mode !== 'tunnel') r.error(joinPath(p.path, 'over'), node, `"${over}" is not a tunnel bundle (mode ${target.bundle.mode ?? 'not set'}); over: must name a mode: tunnel bundle`);
    else if (target.bundle.direction !== p.bundle.direction) r.error(joinPath(p.path, 'over'), node, `"${over}" is ${target.bundle.direction} but this bundle is ${p.bundle.direction}`);
  }
  // RFC 4303 §2.1 / spec §3.9: an inbound SA is found by SPI + destination (+ protocol).
  const seen = new Map<string, ParsedBundle>();
  for (const p of parsed) {
    if (p.bundle.direction !== 'inbound') continue;
    for (const proto of ['esp', 'ah'] as const) {
      const sa = p.bundle[proto];
      if (!sa || sa.spi <= 255) continue;
      const key = `${proto}/${sa.spi}/${destinationKey(p.bundle)}`;
      const prev = seen.get(key);
      const spiNode = (p.fields.values.get(proto) as Node | undefined) ?? p.node;
      if (prev) r.error(joinPath(joinPath(p.path, proto), 'spi'), spiNode, `duplicate inbound ${proto.toUpperCase()} SPI 0x${sa.spi.toString(16).padStart(8, '0')} for the same destination as ${prev.path} ("${prev.bundle.name}")`);
      else seen.set(key, p);
    }
  }
  events.forEach((ev, i) => {
    if (ev.kind === 'add') return;
    if (!byName.has(ev.sa)) r.warning(joinPath(joinPath('events', i), ev.kind), nodes[i], `no bundle named "${ev.sa}"; the ${ev.kind === 'update' ? 'UPDATE_SA' : 'DELETE_SA'} will fail (NDIS_STATUS_INVALID_PARAMETER)`);
  });
}
