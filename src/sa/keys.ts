/**
 * Key material in the SA file: inline hex, `{ env: NAME }` or `{ file: PATH }`.
 *
 * Hex may carry a `0x` prefix, spaces, colons and line breaks (`00:01:02`, `0001 0203`). A key
 * file holds the same hex *text* (trimmed; `xxd -p` output works), never raw binary, so a key
 * file can be inspected and diffed like the SA file; its path is relative to the SA file's
 * directory. Error messages never echo key material: they give lengths and positions only.
 */

import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve as resolvePath } from 'node:path';
import { isMap, isScalar } from 'yaml';
import type { Node } from 'yaml';
import { joinPath } from './reader.js';
import type { Fields, Reader } from './reader.js';

/** Parse hex text; returns the bytes or a message (without the text itself). */
export function parseHexKey(text: string): Buffer | string {
  let s = text.replace(/[\s:]/g, '');
  if (/^0x/i.test(s)) s = s.slice(2);
  if (s === '') return 'empty key';
  const bad = s.search(/[^0-9a-fA-F]/);
  if (bad >= 0) return `not hex: non-hex character at position ${bad + 1} (keys are hex: "0x0011...", spaces and colons allowed)`;
  if (s.length % 2) return `odd number of hex digits (${s.length})`;
  return Buffer.from(s, 'hex');
}

/**
 * Warn when a secret-bearing file is readable by group or others (mode & 0o077). `shown` is
 * the name used in the message and the chmod hint; `named` prefixes the message with it (for
 * key files, whose diagnostics carry the SA file's name).
 */
export function checkPermissions(r: Reader, path: string, shown: string, at: { path: string; node: Node | null }, named = true): void {
  if (process.platform === 'win32') return;
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return;
  }
  if (mode & 0o077) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    r.warning(at.path, at.node, `${named ? `${shown}: ` : ''}readable by group/others (mode ${octal}); chmod 600 ${shown}`);
  }
}

/** Where key sources are resolved from. */
export interface KeyContext {
  /** Directory of the SA file (key `file:` paths are relative to it). */
  baseDir: string;
  env: NodeJS.ProcessEnv;
  /** Source text, to recover plain scalars YAML read as numbers (`0x0011...`). */
  text: string;
}

/**
 * Read the key at `f[name]`. Returns undefined when absent (or null), null after an error
 * (already reported), or the bytes.
 */
export function readKey(r: Reader, f: Fields, name: string, ctx: KeyContext): Buffer | null | undefined {
  const node = r.get(f, name);
  if (node === undefined) return undefined;
  const path = joinPath(f.path, name);
  if (isScalar(node)) {
    let text: string;
    if (typeof node.value === 'string') text = node.value;
    else if (typeof node.value === 'number' || typeof node.value === 'bigint') {
      // A bare 0x... (or all-digit) key is a YAML integer: take the characters as written.
      text = node.source ?? (node.range ? ctx.text.slice(node.range[0], node.range[1]) : '');
    } else {
      r.error(path, node, 'a hex key, { env: NAME } or { file: PATH } expected');
      return null;
    }
    const key = parseHexKey(text);
    if (typeof key === 'string') {
      r.error(path, node, key);
      return null;
    }
    return key;
  }
  if (!isMap(node)) {
    r.error(path, node, 'a hex key, { env: NAME } or { file: PATH } expected');
    return null;
  }
  const src = r.fields(node, path, ['env', 'file'], 'a key source');
  if (!src) return null;
  const envName = r.str(src, 'env');
  const file = r.str(src, 'file');
  if ((envName === undefined) === (file === undefined)) {
    r.error(path, node, 'a key source needs exactly one of env: or file:');
    return null;
  }
  if (envName !== undefined) {
    const value = ctx.env[envName];
    if (value === undefined || value.trim() === '') {
      r.error(joinPath(path, 'env'), src.values.get('env'), `environment variable ${envName} is not set`);
      return null;
    }
    const key = parseHexKey(value);
    if (typeof key === 'string') {
      r.error(joinPath(path, 'env'), src.values.get('env'), `environment variable ${envName}: ${key}`);
      return null;
    }
    return key;
  }
  const full = isAbsolute(file!) ? file! : resolvePath(ctx.baseDir, file!);
  let content: string;
  try {
    content = readFileSync(full, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    r.error(joinPath(path, 'file'), src.values.get('file'), `cannot read key file ${file}${code === 'ENOENT' ? ' (no such file)' : code ? ` (${code})` : ''}`);
    return null;
  }
  checkPermissions(r, full, displayPath(full), { path: joinPath(path, 'file'), node: src.values.get('file') ?? null });
  const key = parseHexKey(content.trim());
  if (typeof key === 'string') {
    r.error(joinPath(path, 'file'), src.values.get('file'), `key file ${file}: ${key} (key files hold hex text, e.g. written by \`xxd -p\`)`);
    return null;
  }
  return key;
}

/** A path as short as possible for messages (relative to the working directory when inside it). */
export function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}
