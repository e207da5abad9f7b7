// What the rehearsal reads of play's event-loop thread when a probe goes
// unanswered: the kernel's run and run-queue times, on real processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { cpuTimeDuring, sampleCpuWait, starved, type SchedSample } from './cpu-wait';

const spin = (cpu: number): ChildProcess => spawn('taskset', ['-c', String(cpu), 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }),
  );
}

describe('a thread measured by its run-queue wait', () => {
  test('when the samples span a window, then what ran and waited between the samples around it is counted', () => {
    const samples: SchedSample[] = [
      { at: 1000, runNs: 0, waitNs: 0 },
      { at: 1100, runNs: 50e6, waitNs: 10e6 },
      { at: 1200, runNs: 60e6, waitNs: 90e6 },
      { at: 1300, runNs: 70e6, waitNs: 170e6 },
    ];
    assert.deepEqual(cpuTimeDuring(samples, 1150, 1250), { runMs: 20, waitMs: 160 });
    assert.deepEqual(cpuTimeDuring(samples, 1100, 1300), { runMs: 20, waitMs: 160 });
    // A window the samples cover only in part counts that part.
    assert.deepEqual(cpuTimeDuring(samples, 900, 1100), { runMs: 50, waitMs: 10 });
    assert.deepEqual(cpuTimeDuring(samples, 1250, 1400), { runMs: 10, waitMs: 80 });
    assert.equal(cpuTimeDuring(samples, 1300, 1400), undefined, 'no sample after the window began');
    assert.equal(cpuTimeDuring(samples, 500, 900), undefined, 'no sample before the window ended');
  });

  test('when a thread sleeps, then it is not starved, whatever the machine does', async () => {
    const sleeper = spawn('sleep', ['5'], { stdio: 'ignore' });
    try {
      const sampler = sampleCpuWait(sleeper.pid ?? 0, 50);
      await sleep(1200);
      const samples = sampler.stop();
      const time = cpuTimeDuring(samples, samples[0]!.at, samples.at(-1)!.at);
      assert.ok(time, 'no schedstat samples of the sleeping process');
      assert.equal(starved(time, 1000), false, `a sleeping thread ran ${time.runMs} ms and waited ${time.waitMs} ms`);
    } finally {
      await stopAll([sleeper]);
    }
  });

  test('when three busy threads share one CPU, then each is starved: it waits for the CPU more than half the time', async () => {
    const spinners = [spin(0), spin(0), spin(0)];
    try {
      await sleep(300);
      const sampler = sampleCpuWait(spinners[0]!.pid ?? 0, 50);
      await sleep(1200);
      const samples = sampler.stop();
      const from = samples[0]!.at;
      const to = samples.at(-1)!.at;
      const time = cpuTimeDuring(samples, from, to);
      assert.ok(time, 'no schedstat samples of the spinning process');
      assert.ok(time.runMs > 0, 'the spinner never ran');
      assert.equal(starved(time, to - from), true, `over ${to - from} ms one of three spinners on one CPU ran ${time.runMs} ms and waited ${time.waitMs} ms`);
    } finally {
      await stopAll(spinners);
    }
  });
});
