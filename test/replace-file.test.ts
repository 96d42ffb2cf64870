/**
 * replaceFile (src/capture/tmpfiles.ts): a finished output put in place of its target without a
 * rename() onto an existing file (on ext4 that writes the whole new file out before returning),
 * the old copy moved aside and removed (by a detached `rm` when large); every path leaves the
 * target with the new bytes and no hidden file behind, and a failed replace keeps the old target.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, readSync, rmSync, symlinkSync, truncateSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { replaceFile } from '../src/capture/tmpfiles.js';
import { repoRoot } from './helpers/capture-util.js';

const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-replace-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const BIG = 32 << 20;

/** Hidden files left beside the targets (`.<name>.<pid>.old`), after the detached rm had time. */
async function leftovers(d: string, ms = 5000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const old = readdirSync(d).filter((f) => f.endsWith('.old'));
    if (old.length === 0 || Date.now() > until) return old;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function fresh(name: string): string {
  const d = join(dir, name);
  rmSync(d, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', d]);
  return d;
}

describe('replaceFile', { skip: process.platform === 'win32' ? 'plain rename on Windows' : false }, () => {
  it('a new target: the file is renamed into place', async () => {
    const d = fresh('new');
    writeFileSync(join(d, 't.tmp'), 'new bytes');
    assert.equal(await replaceFile(join(d, 't.tmp'), join(d, 'out')), 'new');
    assert.equal(readFileSync(join(d, 'out'), 'utf8'), 'new bytes');
    assert.deepEqual(readdirSync(d), ['out']);
  });

  it('a small existing target: replaced, the old copy removed here', async () => {
    const d = fresh('small');
    writeFileSync(join(d, 'out'), 'old bytes, longer than the new ones');
    writeFileSync(join(d, 't.tmp'), 'new bytes');
    assert.equal(await replaceFile(join(d, 't.tmp'), join(d, 'out')), 'renamed');
    assert.equal(readFileSync(join(d, 'out'), 'utf8'), 'new bytes');
    assert.deepEqual(readdirSync(d), ['out'], 'nothing left beside it, at once');
  });

  it('a large existing target: replaced, the old copy removed by a detached rm; an open reader keeps the old bytes', async () => {
    const d = fresh('large');
    const target = join(d, 'out');
    writeFileSync(target, 'OLD!');
    truncateSync(target, BIG); // sparse: large to stat, nothing on disk
    const fd = openSync(target, 'r');
    try {
      writeFileSync(join(d, 't.tmp'), 'new bytes');
      assert.equal(await replaceFile(join(d, 't.tmp'), target), 'aside');
      assert.equal(readFileSync(target, 'utf8'), 'new bytes');
      const b = Buffer.alloc(4);
      readSync(fd, b, 0, 4, 0);
      assert.equal(b.toString(), 'OLD!');
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(await leftovers(d), []);
    assert.deepEqual(readdirSync(d), ['out']);
  });

  it('no rm to start: the old copy is removed here instead', async () => {
    const d = fresh('norm');
    const target = join(d, 'out');
    writeFileSync(target, '');
    truncateSync(target, BIG);
    writeFileSync(join(d, 't.tmp'), 'new bytes');
    const path = process.env.PATH;
    process.env.PATH = join(d, 'no-such-dir');
    try {
      assert.equal(await replaceFile(join(d, 't.tmp'), target), 'aside');
    } finally {
      process.env.PATH = path;
    }
    assert.equal(readFileSync(target, 'utf8'), 'new bytes');
    assert.deepEqual(await leftovers(d), []);
  });

  it('the new file cannot be moved: the old target is back under its name, and the error reported', async () => {
    const d = fresh('fail');
    const target = join(d, 'out');
    writeFileSync(target, 'old bytes');
    await assert.rejects(replaceFile(join(d, 'missing.tmp'), target), /ENOENT/);
    assert.equal(readFileSync(target, 'utf8'), 'old bytes');
    assert.deepEqual(readdirSync(d), ['out']);
  });

  it('a symbolic link as target: replaced by the file, as a plain rename does; what it pointed to is untouched', async () => {
    const d = fresh('link');
    writeFileSync(join(d, 'real'), 'pointed to');
    symlinkSync('real', join(d, 'out'));
    writeFileSync(join(d, 't.tmp'), 'new bytes');
    assert.equal(await replaceFile(join(d, 't.tmp'), join(d, 'out')), 'renamed');
    assert.ok(lstatSync(join(d, 'out')).isFile());
    assert.equal(readFileSync(join(d, 'out'), 'utf8'), 'new bytes');
    assert.equal(readFileSync(join(d, 'real'), 'utf8'), 'pointed to');
  });

  it('the CLI run twice onto the same outputs: the same bytes, nothing left beside them', async () => {
    const d = fresh('cli');
    const demo = join(repoRoot(), 'fixtures/demo');
    const run = (): void => {
      const r = spawnSync(process.execPath, [join(repoRoot(), 'bin/ipsecov2'), 'rx', '--sa', join(demo, 'demo-sas.yaml'), join(demo, 'demo.pcapng'), '-w', join(d, 'o.pcapng'), '--oob', join(d, 'o.jsonl'), '--quiet'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    run();
    const first = [readFileSync(join(d, 'o.pcapng')), readFileSync(join(d, 'o.jsonl'))];
    run();
    assert.ok(readFileSync(join(d, 'o.pcapng')).equals(first[0]!));
    assert.ok(readFileSync(join(d, 'o.jsonl')).equals(first[1]!));
    assert.deepEqual(await leftovers(d), []);
    assert.deepEqual(readdirSync(d).sort(), ['o.jsonl', 'o.pcapng']);
    assert.ok(!existsSync(join(d, 'o.pcapng.old')));
  });
});
