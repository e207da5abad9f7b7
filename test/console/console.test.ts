// The console in a real browser (Debian's chromium driven by playwright-core)
// against a real mesh: the graph, a play, the reporting delay switch on and
// off, and a read-only console without the faults token. One mesh, one
// browser; screenshots of the states go to docs/ when CONSOLE_SCREENSHOTS=1.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { startConsole } from '../../kit/console';
import { MESH_FAULTS_TOKEN, startMesh } from '../../kit/mesh';
import { REPO_ROOT } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
/** What a loaded machine cannot miss: the page polls every second and the rates are over five. */
const STATE_TIMEOUT_MS = 30_000;
const screenshots = process.env['CONSOLE_SCREENSHOTS'] === '1';

/** The state the page shows for an edge or a node, in words (data-health mirrors the words). */
const health = (page: Page, selector: string) => page.locator(`#edges tr${selector}, #nodes tr${selector}`).first().getAttribute('data-health');

async function waitForHealth(page: Page, selector: string, wanted: readonly string[], what: string): Promise<void> {
  await waitFor(async () => wanted.includes((await health(page, selector)) ?? ''), { what, timeoutMs: STATE_TIMEOUT_MS, everyMs: 200 });
}

async function play(page: Page): Promise<Record<string, string>> {
  await page.locator('#play').click();
  const fields = page.locator('#answer-fields');
  await fields.waitFor({ timeout: STATE_TIMEOUT_MS });
  const answer: Record<string, string> = {};
  for (const dd of await fields.locator('dd').all()) answer[(await dd.getAttribute('data-field')) ?? ''] = (await dd.textContent()) ?? '';
  return answer;
}

const shot = async (page: Page, name: string) => {
  if (screenshots) await page.screenshot({ path: join(REPO_ROOT, 'docs', `console-${name}.png`), fullPage: true });
};

test('when the console runs beside a mesh, then it shows the graph, plays, and its reporting delay switch breaks and mends the play → reporting path', async (t) => {
  // The browser starts while the mesh does: the two slowest starts, side by side.
  const [mesh, browser] = await Promise.all([startMesh(), chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })]);
  t.after(() => mesh.stop());
  t.after(() => browser.close());
  const [consoleApp, readOnly] = await Promise.all([startConsole(mesh, MESH_FAULTS_TOKEN), startConsole(mesh, undefined)]);
  t.after(() => consoleApp.proc.stop());
  t.after(() => readOnly.proc.stop());
  const [page, readOnlyPage] = await Promise.all([browser.newPage({ viewport: { width: 1280, height: 1100 } }), browser.newPage()]);

  // Traffic besides the page's own plays, as `npm run traffic` would: the paths have rates to show.
  const stopTraffic = new AbortController();
  const traffic = (async () => {
    while (!stopTraffic.signal.aborted) {
      await fetch(`${mesh.urls.play}/play/asset/456/user/bob`, { method: 'POST', signal: stopTraffic.signal }).catch(() => undefined);
      await new Promise((done) => setTimeout(done, 200));
    }
  })();
  t.after(async () => {
    stopTraffic.abort();
    await traffic;
  });

  await Promise.all([page.goto(consoleApp.url), readOnlyPage.goto(readOnly.url)]);

  await t.test('when the page has scraped, then every node is shown and up', async () => {
    for (const node of ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener', 'nats', 'postgres']) {
      await page.locator(`svg [data-node="${node}"]`).waitFor({ timeout: STATE_TIMEOUT_MS });
      await waitForHealth(page, `[data-node="${node}"]`, ['ok', 'idle'], `${node} shown up`);
    }
    await waitForHealth(page, '[data-edge="play->reporting"]', ['ok'], 'play → reporting ok under traffic');
    assert.equal(await page.locator('#edges tr[data-edge="play->reporting"] .health').textContent(), 'ok', 'the state is in words too');
  });

  await t.test('when an asset is played from the page, then the answer shows and the counts climb', async () => {
    await page.locator('#asset option[value="123"]').waitFor({ state: 'attached', timeout: STATE_TIMEOUT_MS });
    await page.locator('#asset').selectOption('123');
    // A whole answer, each try as a new user: on a busy machine the first play of 123 (its
    // catalog not cached yet) can miss play's deadline for a backend.
    let tries = 0;
    const answer = await waitFor(
      async () => {
        await page.locator('#user').fill(`console-user-${++tries}`);
        const answered = await play(page);
        return answered['degraded'] === '[]' && answered;
      },
      { what: 'a play answered whole', timeoutMs: STATE_TIMEOUT_MS, everyMs: 200 },
    );
    assert.equal(answer['title'], '"It"');
    assert.equal(answer['recorded'], 'true');
    // Play asks for the counts while it publishes the view, so on a busy machine the counts can
    // already hold this play's own view (soak run 44): never more.
    assert.ok(['0', '1'].includes(answer['userviews'] ?? ''), `a first play of this user counts at most its own view, not ${answer['userviews']}`);
    await waitFor(async () => (await page.locator('#counts').getAttribute('data-userviews')) === '1', {
      what: 'the counts climb to the recorded view',
      timeoutMs: STATE_TIMEOUT_MS,
      everyMs: 200,
    });
    await shot(page, 'play');
  });

  await t.test('when reporting’s delay is switched on, then play → reporting turns red and the answer is degraded by reporting', async () => {
    const button = page.locator('button[data-switch="reporting.delay"]');
    await button.waitFor({ timeout: STATE_TIMEOUT_MS });
    assert.equal(await button.getAttribute('aria-pressed'), 'false');
    // From the keyboard, as a person without a mouse would.
    await button.focus();
    await page.keyboard.press('Enter');
    await waitFor(async () => (await page.locator('button[data-switch="reporting.delay"]').getAttribute('aria-pressed')) === 'true', {
      what: 'the switch says on',
      timeoutMs: STATE_TIMEOUT_MS,
      everyMs: 200,
    });
    const answer = await play(page);
    assert.equal(answer['degraded'], '["reporting"]');
    await waitForHealth(page, '[data-edge="play->reporting"]', ['failing'], 'play → reporting failing');
    assert.match((await page.locator('#edges tr[data-edge="play->reporting"]').textContent()) ?? '', /FAILING/, 'a failing path says so in words');
    await shot(page, 'reporting-delay');
  });

  await t.test('when reporting’s delay is switched off, then the path recovers and plays are whole again', async () => {
    await page.locator('button[data-switch="reporting.delay"]').click();
    await waitForHealth(page, '[data-edge="play->reporting"]', ['ok'], 'play → reporting ok again');
    // Plays whole again, not each one: on a busy machine one counts call can still pass play's deadline.
    await waitFor(async () => (await play(page))['degraded'] === '[]', {
      what: 'a play degraded by no service',
      timeoutMs: STATE_TIMEOUT_MS,
      everyMs: 500,
    });
    await shot(page, 'graph');
  });

  await t.test('when the console has no faults token, then the page has no switches and says it is read-only', async () => {
    await readOnlyPage.locator('#read-only').waitFor({ timeout: STATE_TIMEOUT_MS });
    // Drawn from a state the page polled: switches, had there been any, would be drawn with it.
    await readOnlyPage.locator('#nodes tr[data-node="play"]').waitFor({ timeout: STATE_TIMEOUT_MS });
    assert.equal(await readOnlyPage.locator('button[data-switch]').count(), 0);
    const put = await fetch(`${readOnly.url}/api/switches/reporting.delay`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"on":true}',
    });
    assert.equal(put.status, 404, 'nor does its API flip anything');
  });
});
