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

  // The image build (shared with the image test, which may hold the build lock) comes first.
  before(
    async () => {
      rehearsal = await Rehearsal.start((line) => console.log(`rehearsal: ${line}`));
    },
    { timeout: 8 * 60_000 },
  );

  after(async () => {
    await rehearsal?.close();
  });

  for (const step of STEPS) {
    test(step.name, async () => {
      assert.deepEqual(await step.run(rehearsal), []);
    });
  }
});
