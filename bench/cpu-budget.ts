/**
 * Where a run's CPU time goes, thread by thread (Linux only: /proc). The speed issue asks what
 * bounds the figures when a target is out of reach; on a machine with fewer cores than busy
 * threads the answer is a budget: how much of (cores × wall time) each thread used, how long the
 * main thread (the pipeline's critical path) waited runnable for a core, and how long the cores
 * sat idle.
 *
 * The command is started and its threads' /proc/<pid>/task/<tid>/schedstat read every
 * `intervalMs` (nanosecond on-CPU and run-queue times; a thread that ends between two samples
 * loses at most one interval), with the machine's /proc/stat before and after.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

export interface ThreadCpu {
  tid: number;
  /** The thread's name (`comm`): `ipsecov2-crypto`, `ipsecov2-write`, or `node` for Node's own. */
  name: string;
  /** Seconds on a CPU, and waiting runnable for one, at its last sample. */
  runS: number;
  waitS: number;
}

export interface CpuBudget {
  pid: number;
  wallS: number;
  exitCode: number | null;
  stderr: string;
  /** Every thread seen, the main thread (tid = pid) first when seen. */
  threads: ThreadCpu[];
  /** Seconds of all the machine's CPUs busy and idle during the run (/proc/stat). */
  machineBusyS: number;
  machineIdleS: number;
  /** CPU seconds of the process that sampled (it shares the machine with the run). */
  samplerS: number;
}

/** /proc/stat's first line: busy and idle seconds of all CPUs together (USER_HZ ticks, 100 a second on Linux). */
export function machineTimes(text = readFileSync('/proc/stat', 'latin1')): { busy: number; idle: number } {
  const f = text.slice(0, text.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is inside user)
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  let all = 0;
  for (let i = 0; i < Math.min(8, f.length); i++) all += f[i]!;
  return { busy: (all - idle) / 100, idle: idle / 100 };
}

/** schedstat's first two fields (ns on CPU, ns waiting runnable) in seconds; null if the thread is gone. */
export function parseSchedstat(text: string): [number, number] | null {
  const f = text.trim().split(/\s+/);
  if (f.length < 2) return null;
  const run = Number(f[0]);
  const wait = Number(f[1]);
  return Number.isFinite(run) && Number.isFinite(wait) ? [run / 1e9, wait / 1e9] : null;
}

/**
 * The threads of one process, each with its schedstat open: a sample is one pread per thread (a
 * readFileSync per thread and interval cost the sampling process ~0.3 s of CPU over a 2 s run on
 * this 2-core machine, beside the run it measures). The task list is read again every
 * `relistEvery` samples (threads appear as a run starts).
 */
class Sampler {
  readonly seen = new Map<number, ThreadCpu & { fd: number }>();
  private readonly buf = Buffer.alloc(128);
  private n = 0;
  constructor(private readonly pid: number, private readonly relistEvery = 5) {}

  sample(): void {
    if (this.n++ % this.relistEvery === 0) this.list();
    for (const e of this.seen.values()) {
      if (e.fd < 0) continue;
      try {
        const s = parseSchedstat(this.buf.toString('latin1', 0, readSync(e.fd, this.buf, 0, this.buf.length, 0)));
        if (s !== null) [e.runS, e.waitS] = s;
      } catch {
        this.close(e); // the thread has ended: its last sample stays
      }
    }
  }

  private list(): void {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${this.pid}/task`);
    } catch {
      return; // ended
    }
    for (const t of tids) {
      const tid = Number(t);
      const e = this.seen.get(tid);
      if (e !== undefined) {
        // a thread listed as it started may not have named itself yet (the addon's do at once)
        if (e.name === 'node' && tid !== this.pid && e.fd >= 0) {
          try { e.name = readFileSync(`/proc/${this.pid}/task/${t}/comm`, 'latin1').trim(); } catch { /* ended */ }
        }
        continue;
      }
      try {
        const name = readFileSync(`/proc/${this.pid}/task/${t}/comm`, 'latin1').trim();
        this.seen.set(tid, { tid, name, runS: 0, waitS: 0, fd: openSync(`/proc/${this.pid}/task/${t}/schedstat`, 'r') });
      } catch {
        // the thread ended between the listing and the open
      }
    }
  }

  private close(e: { fd: number }): void {
    try { closeSync(e.fd); } catch { /* already */ }
    e.fd = -1;
  }

  closeAll(): void {
    for (const e of this.seen.values()) if (e.fd >= 0) this.close(e);
  }
}

/** Run `cmd args` and measure its threads' CPU; `stdin` ignored, stdout discarded, stderr kept. */
export function cpuBudget(cmd: string, args: string[], env?: NodeJS.ProcessEnv, intervalMs = 25): Promise<CpuBudget> {
  return new Promise((resolve, reject) => {
    const m0 = machineTimes();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => { stderr += s; });
    const pid = child.pid;
    const sampler = pid !== undefined ? new Sampler(pid) : null;
    const timer = sampler !== null ? setInterval(() => sampler.sample(), intervalMs) : null;
    child.once('error', (e) => { if (timer) clearInterval(timer); sampler?.closeAll(); reject(e); });
    child.once('close', (code) => {
      if (timer) clearInterval(timer);
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      const m1 = machineTimes();
      const c = process.cpuUsage(c0);
      sampler?.closeAll();
      const threads = [...(sampler?.seen.values() ?? [])].map(({ tid, name, runS, waitS }) => ({ tid, name, runS, waitS })).sort((a, b) => (a.tid === pid ? -1 : b.tid === pid ? 1 : a.tid - b.tid));
      resolve({
        pid: pid ?? -1, wallS, exitCode: code, stderr, threads,
        machineBusyS: m1.busy - m0.busy, machineIdleS: m1.idle - m0.idle,
        samplerS: (c.user + c.system) / 1e6,
      });
    });
  });
}

/** Threads summed by role: the main thread (tid = pid), the addon's crypto and write threads, the others (Node's: libuv's I/O pool, V8's compiler and GC helpers). */
export function byRole(b: CpuBudget): { role: string; count: number; runS: number; waitS: number }[] {
  const roles = [
    { role: 'main', count: 0, runS: 0, waitS: 0 },
    { role: 'crypto', count: 0, runS: 0, waitS: 0 },
    { role: 'write', count: 0, runS: 0, waitS: 0 },
    { role: 'other', count: 0, runS: 0, waitS: 0 },
  ];
  for (const t of b.threads) {
    const r = roles[t.tid === b.pid ? 0 : t.name === 'ipsecov2-crypto' ? 1 : t.name === 'ipsecov2-write' ? 2 : 3]!;
    r.count++;
    r.runS += t.runS;
    r.waitS += t.waitS;
  }
  return roles;
}
