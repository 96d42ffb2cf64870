/**
 * The bench's CPU budget (bench/cpu-budget.ts): the /proc parsers, and a real run whose threads'
 * CPU is known in outline (a main thread and a named thread each burning CPU for a while).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { byRole, cpuBudget, machineTimes, parseSchedstat } from '../bench/cpu-budget.js';

test('parseSchedstat: ns on a CPU and waiting, in seconds; null for junk', () => {
  assert.deepEqual(parseSchedstat('1500000000 250000000 42\n'), [1.5, 0.25]);
  assert.equal(parseSchedstat(''), null);
  assert.equal(parseSchedstat('x y z'), null);
});

test('machineTimes: /proc/stat busy and idle seconds (idle + iowait idle; steal busy)', () => {
  const t = machineTimes('cpu  100 20 30 400 50 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n');
  assert.equal(t.idle, 4.5);
  assert.equal(t.busy, 1.71);
});

test('cpuBudget: threads found by name, the main thread first, their CPU counted', { skip: process.platform !== 'linux' }, async () => {
  // the main thread spins for 0.3 s of its own CPU time; a worker spins 0.3 s too. CPU time, not
  // wall time: on a busy machine 0.3 s of wall time gave the main thread 0.22 s of CPU.
  const spin = "const spin = (s) => { const fs = require('node:fs'); const cpu = () => Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e9; const t = cpu(); while (cpu() - t < s); };";
  const script = `
    const { Worker } = require('node:worker_threads');
    ${spin}
    const w = new Worker(${JSON.stringify(`${spin} require('node:worker_threads').parentPort.once('message', () => { spin(0.3); process.exit(0); });`)}, { eval: true, name: 'x' });
    w.once('online', () => { w.postMessage(0); spin(0.3); });
  `;
  const b = await cpuBudget(process.execPath, ['-e', script]);
  assert.equal(b.exitCode, 0, b.stderr);
  assert.equal(b.threads[0]!.tid, b.pid);
  const roles = byRole(b);
  assert.equal(roles[0]!.role, 'main');
  assert.equal(roles[0]!.count, 1);
  assert.ok(roles[0]!.runS >= 0.25, `main ran ${roles[0]!.runS} s`);
  // the worker is one of Node's own threads here (not named ipsecov2-*): counted as "other"
  assert.ok(roles[3]!.runS >= 0.2, `others ran ${roles[3]!.runS} s`);
  assert.equal(roles[1]!.count + roles[2]!.count, 0);
  const all = roles.reduce((s, r) => s + r.runS, 0);
  assert.ok(all <= b.machineBusyS + 0.1, `threads ${all} s, machine busy ${b.machineBusyS} s`);
  assert.ok(b.wallS >= 0.3);
});

test('byRole: the main thread by tid, the addon threads by name, the rest as others', () => {
  const t = (tid: number, name: string, runS: number, waitS = 0): { tid: number; name: string; runS: number; waitS: number } => ({ tid, name, runS, waitS });
  const roles = byRole({
    pid: 10, wallS: 1, exitCode: 0, stderr: '', machineBusyS: 2, machineIdleS: 0, samplerS: 0,
    threads: [t(11, 'node', 0.125), t(10, 'node', 1, 0.2), t(12, 'ipsecov2-crypto', 0.5, 0.1), t(13, 'ipsecov2-write', 0.25), t(14, 'ipsecov2-write', 0.125), t(15, 'libuv-worker', 0.0625)],
  });
  assert.deepEqual(roles.map((r) => [r.role, r.count, r.runS, r.waitS]), [
    ['main', 1, 1, 0.2],
    ['crypto', 1, 0.5, 0.1],
    ['write', 2, 0.375, 0],
    ['other', 2, 0.1875, 0],
  ]);
});
