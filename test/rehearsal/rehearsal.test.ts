// The rehearsal of `skaffold dev` (test/rehearsal/rehearsal.ts): the chart's
// Deployments started from the image with podman, wired only by what the
// chart renders, then the steps a first user takes against them
// (test/rehearsal/steps.ts), in order, on one release.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Rehearsal } from './rehearsal';
import { STEPS } from './steps';

describe('the rehearsal of skaffold dev', { timeout: 9 * 60_000 }, () => {
  let rehearsal: Rehearsal;

  before(async () => {
    rehearsal = await Rehearsal.start((line) => console.log(`rehearsal: ${line}`));
  });

  after(async () => {
    await rehearsal?.close();
  });

  for (const step of STEPS) {
    test(step.name, async () => {
      assert.deepEqual(await step.run(rehearsal), []);
    });
  }
});
