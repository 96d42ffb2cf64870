/**
 * A small typed reader over a parsed `yaml` document: every value comes with the path inside
 * the document (`sas[2].esp.encryptionKey`) and its line:column, and every problem is collected
 * as a Diagnostic instead of thrown, so the loader can report all errors at once.
 */

import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node, Scalar, YAMLMap } from 'yaml';
import type { Diagnostic } from './model.js';

/** Edit distance with adjacent transpositions (optimal string alignment), for suggestions. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The closest candidate to `word`, or null when none is close. Also matches reordered
 * dash-separated tokens (`aes-128-gcm` → `aes-gcm-128`) and case differences.
 */
export function suggest(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  const tokens = (s: string): string => s.toLowerCase().split(/[-_ ]/).sort().join('-');
  for (const c of candidates) if (c.toLowerCase() === w || tokens(c) === tokens(w)) return c;
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(w.length / 3)));
  return bestD <= limit ? best : null;
}

/** `base.key` / `base[i]` path building. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

/** The entries of one mapping, after the unknown-key check. */
export interface Fields {
  path: string;
  node: YAMLMap;
  /** Value node per key; a `null` scalar is reported as absent by the getters. */
  values: Map<string, Node | null>;
  keys: Map<string, Node>;
}

/** Collects diagnostics and reads typed values with their positions. */
export class Reader {
  readonly diagnostics: Diagnostic[] = [];

  constructor(
    readonly file: string,
    private readonly lineCounter: LineCounter | null,
    private readonly doc: Document | null,
  ) {}

  /** 1-based line/column of a node, or nulls. */
  loc(node: Node | null | undefined): { line: number | null; col: number | null } {
    if (!node || !node.range || !this.lineCounter) return { line: null, col: null };
    const p = this.lineCounter.linePos(node.range[0]);
    return { line: p.line, col: p.col };
  }

  /** Position from a source offset. */
  locAt(offset: number): { line: number | null; col: number | null } {
    if (!this.lineCounter) return { line: null, col: null };
    const p = this.lineCounter.linePos(offset);
    return { line: p.line, col: p.col };
  }

  error(path: string, node: Node | null | undefined, message: string): void {
    this.diagnostics.push({ level: 'error', file: this.file, path, ...this.loc(node), message });
  }

  warning(path: string, node: Node | null | undefined, message: string): void {
    this.diagnostics.push({ level: 'warning', file: this.file, path, ...this.loc(node), message });
  }

  /** Follow YAML aliases (`*anchor`). */
  resolve(node: unknown): Node | null {
    if (node == null) return null;
    if (isAlias(node) && this.doc) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return node as Node;
  }

  /** True for an absent value or a YAML null. */
  isNull(node: Node | null | undefined): boolean {
    return node == null || (isScalar(node) && node.value === null);
  }

  /**
   * Read a mapping and check its keys against `allowed`; unknown keys are errors with a
   * suggestion. Returns null (after an error) when the node is not a mapping.
   */
  fields(node: Node | null, path: string, allowed: readonly string[], what = 'a mapping'): Fields | null {
    node = this.resolve(node);
    if (!isMap(node)) {
      this.error(path, node, `${what} expected, got ${describe(node)}`);
      return null;
    }
    const values = new Map<string, Node | null>();
    const keys = new Map<string, Node>();
    for (const pair of node.items) {
      const keyNode = pair.key as Node;
      const key = isScalar(keyNode) ? String(keyNode.value) : null;
      if (key === null) {
        this.error(path, keyNode, 'keys must be plain strings');
        continue;
      }
      if (!allowed.includes(key)) {
        const s = suggest(key, allowed);
        this.error(joinPath(path, key), keyNode, `unknown key "${key}"${s ? ` (did you mean "${s}"?)` : ''}; allowed here: ${allowed.join(', ')}`);
        continue;
      }
      values.set(key, this.resolve(pair.value));
      keys.set(key, keyNode);
    }
    return { path, node, values, keys };
  }

  /** The value node of `name`, or undefined when absent or null. */
  get(f: Fields, name: string): Node | undefined {
    const v = f.values.get(name);
    return this.isNull(v) ? undefined : (v as Node);
  }

  /** A string value (numbers are not accepted). */
  str(f: Fields, name: string): string | undefined {
    const node = this.get(f, name);
    if (node === undefined) return undefined;
    if (isScalar(node) && typeof node.value === 'string') return node.value;
    this.error(joinPath(f.path, name), node, `a string expected, got ${describe(node)}`);
    return undefined;
  }

  /** An integer in [min, max]; `hexOk` also accepts "0x..." strings. */
  int(f: Fields, name: string, min: number, max: number, hexOk = false): number | undefined {
    const node = this.get(f, name);
    if (node === undefined) return undefined;
    return this.intNode(node, joinPath(f.path, name), min, max, hexOk);
  }

  intNode(node: Node, path: string, min: number, max: number, hexOk = false): number | undefined {
    let v: number | undefined;
    if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value)) v = node.value;
    else if (isScalar(node) && typeof node.value === 'bigint') v = Number(node.value);
    else if (hexOk && isScalar(node) && typeof node.value === 'string' && /^0x[0-9a-f]+$/i.test(node.value.trim())) v = parseInt(node.value.trim(), 16);
    if (v === undefined) {
      this.error(path, node, `an integer expected${hexOk ? ' (or a "0x..." hex string)' : ''}, got ${describe(node)}`);
      return undefined;
    }
    if (v < min || v > max) {
      this.error(path, node, `${v} is out of range ${min}..${max}`);
      return undefined;
    }
    return v;
  }

  bool(f: Fields, name: string): boolean | undefined {
    const node = this.get(f, name);
    if (node === undefined) return undefined;
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    this.error(joinPath(f.path, name), node, `true or false expected, got ${describe(node)}`);
    return undefined;
  }

  /** One of `choices`; unknown values get a suggestion. */
  oneOf<T extends string>(f: Fields, name: string, choices: readonly T[]): T | undefined {
    const node = this.get(f, name);
    if (node === undefined) return undefined;
    return this.oneOfNode(node, joinPath(f.path, name), choices);
  }

  oneOfNode<T extends string>(node: Node, path: string, choices: readonly T[]): T | undefined {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
    const s = typeof v === 'string' ? suggest(v, choices) : null;
    this.error(path, node, `${describe(node)} is not one of ${choices.join(' | ')}${s ? ` (did you mean "${s}"?)` : ''}`);
    return undefined;
  }

  /** Items of a sequence (aliases resolved), or null after an error. */
  seq(node: Node | null | undefined, path: string): Node[] | null {
    node = this.resolve(node);
    if (!isSeq(node)) {
      this.error(path, node, `a list expected, got ${describe(node)}`);
      return null;
    }
    return node.items.map((n) => this.resolve(n) as Node);
  }
}

/** Short description of a node for messages (never prints long strings: keys may be secret). */
export function describe(node: Node | null | undefined): string {
  if (node == null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = (node as Scalar).value;
    if (v === null) return 'null';
    if (typeof v === 'string') {
      // Never echo what may be key material: long hex strings are described, not shown.
      if (/[0-9a-f]{16}/i.test(v.replace(/[\s:]/g, ''))) return `a hex string of ${v.length} characters`;
      return v.length <= 40 ? JSON.stringify(v) : `a string of ${v.length} characters`;
    }
    if (typeof v === 'bigint' || (typeof v === 'number' && !Number.isSafeInteger(v) && Math.abs(v) > 2 ** 53)) return 'a large number';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  }
  return 'an unsupported value';
}
