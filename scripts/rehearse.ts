/**
 * The rehearsal of `skaffold dev` as a command: builds the image as the image
 * test does, renders the chart with skaffold's dev values, starts every
 * Deployment's pod with podman from the rendered objects, runs the checks of
 * test/rehearsal/steps.ts, prints what it does and the figures, and removes
 * everything it made, also on failure or Ctrl-C.
 *
 *   npm run rehearse             run every step
 *   npm run rehearse -- --hold   then keep the pods running until Ctrl-C, printing their Services' URLs
 *
 * Needs root, podman, runc and buildah (scripts/install-deps.sh test installs them).
 * Exit codes: 0 every step passed, 1 a step failed or the rehearsal could not start, 2 a usage error.
 */
import { parseArgs } from 'node:util';
import { SERVICE_NAMES } from '../services/contracts/services';
import { Rehearsal } from '../test/rehearsal/rehearsal';
import { STEPS } from '../test/rehearsal/steps';

async function main(argv: readonly string[]): Promise<number> {
  let hold: boolean;
  try {
    ({
      values: { hold = false },
    } = parseArgs({ args: [...argv], options: { hold: { type: 'boolean' } }, strict: true }));
  } catch (err) {
    console.error(`rehearse: ${(err as Error).message}\nusage: npm run rehearse [-- --hold]`);
    return 2;
  }
  const started = Date.now();
  const say = (line: string) => console.log(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`);
  let rehearsal: Rehearsal;
  try {
    rehearsal = Rehearsal.prepare(say);
  } catch (err) {
    say(`the rehearsal cannot run here: ${(err as Error).message}`);
    return 1;
  }
  // Ctrl-C at any moment: remove what was made, then leave.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: removing what the rehearsal made`);
      void rehearsal
        .close()
        .catch((err: unknown) => say(`cleanup failed: ${String(err)}`))
        .finally(() => process.exit(130));
    });
  }
  try {
    await rehearsal.begin();
    let failed = 0;
    const steps = hold ? STEPS.filter((s) => !/uninstalled|rehearsal is over/.test(s.name)) : STEPS;
    for (const step of steps) {
      const problems = await step.run(rehearsal).catch((err: unknown) => [`threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`]);
      say(`${problems.length === 0 ? 'PASS' : 'FAIL'} ${step.name}`);
      for (const problem of problems) say(`     ${problem}`);
      if (problems.length > 0) failed++;
    }
    say(
      `${steps.length - failed} of ${steps.length} steps passed; all pods were ready ${(rehearsal.ready.allReadyMs / 1000).toFixed(1)} s after the first started`,
    );
    if (hold) {
      for (const component of SERVICE_NAMES) say(`${component}: ${rehearsal.serviceUrl(component)}`);
      say('holding: Ctrl-C removes everything');
      await new Promise(() => {});
    }
    return failed === 0 ? 0 : 1;
  } catch (err) {
    say(`the rehearsal could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  } finally {
    await rehearsal.close().catch((err: unknown) => say(`cleanup failed: ${String(err)}`));
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
