import { Router } from 'express';
import { Counter } from 'prom-client';
import { z } from 'zod';
import { HttpError, assetNotFound } from '../platform/errors';
import type { Metrics } from '../platform/metrics';
import { idSchema, parseParams } from '../platform/validation';
import { playView, type PlayDeps } from './play-view';

const playParams = z.object({ assetId: idSchema, userId: idSchema });

export function playRoutes(deps: PlayDeps & { metrics: Metrics }): Router {
  const answers = new Counter({
    name: 'play_answers_total',
    help: 'Play answers, by outcome',
    labelNames: ['outcome'] as const,
    registers: [deps.metrics.registry],
  });
  const degradedParts = new Counter({
    name: 'play_degraded_parts_total',
    help: 'Parts missing from play answers, by part',
    labelNames: ['part'] as const,
    registers: [deps.metrics.registry],
  });
  // Every series exists from the start, so dashboards show 0 and increase() sees the first event.
  for (const outcome of ['complete', 'degraded', 'not_found', 'unavailable']) answers.inc({ outcome }, 0);
  for (const part of ['cdnurl', 'reporting']) degradedParts.inc({ part }, 0);
  const router = Router();
  router.post('/play/asset/:assetId/user/:userId', async (req, res) => {
    const { assetId, userId } = parseParams(playParams, req);
    const outcome = await playView(deps, assetId, userId);
    if (outcome.kind === 'not_found') {
      answers.inc({ outcome: 'not_found' });
      throw assetNotFound(assetId);
    }
    if (outcome.kind === 'unavailable') {
      answers.inc({ outcome: 'unavailable' });
      throw new HttpError(503, 'metadata_unavailable', 'the metadata service did not answer; try again');
    }
    const { playback } = outcome;
    answers.inc({ outcome: playback.degraded.length > 0 ? 'degraded' : 'complete' });
    for (const part of playback.degraded) degradedParts.inc({ part });
    res.json(playback);
  });
  return router;
}
