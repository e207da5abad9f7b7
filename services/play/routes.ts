import { z } from 'zod';
import { PLAY_RETRYABLE_ERRORS, degradedPartSchema, playbackSchema } from '../contracts/play';
import { HttpError, assetNotFound } from '../platform/errors';
import type { Metrics } from '../platform/metrics';
import { notFoundAnswer, operation, type ServiceApi } from '../platform/openapi';
import { idSchema } from '../platform/validation';
import { playView, type PlayDeps } from './play-view';

const playParams = z.object({ assetId: idSchema, userId: idSchema });

export function playApi(deps: PlayDeps & { metrics: Metrics }): ServiceApi {
  const answers = deps.metrics.counterBy('play_answers_total', 'Play answers, by outcome', 'outcome', ['complete', 'degraded', 'not_found', 'unavailable']);
  const degradedParts = deps.metrics.counterBy('play_degraded_parts_total', 'Parts missing from play answers, by part', 'part', degradedPartSchema.options);
  return {
    service: 'play',
    operations: [
      operation({
        method: 'post',
        path: '/play/asset/:assetId/user/:userId',
        summary: 'Play an asset: what the page needs from metadata, cdnurl and reporting, and a view event on NATS',
        params: playParams,
        ok: { description: 'What arrived, and which backends did not answer', schema: playbackSchema },
        responses: { 404: notFoundAnswer('Asset not found') },
        // overloaded: the load shedding app.ts puts in front of /play.
        errors: PLAY_RETRYABLE_ERRORS,
        examples: [
          { name: 'play', summary: 'a seeded asset', params: { assetId: '123', userId: 'alice' }, status: 200 },
          { name: 'noUrl', summary: 'an asset without a URL: url is null', params: { assetId: '456', userId: 'alice' }, status: 200 },
          { name: 'unknown', summary: 'an asset metadata does not know (no view is emitted)', params: { assetId: 'ghost', userId: 'alice' }, status: 404 },
          { name: 'invalidId', summary: 'a user id with a dot', params: { assetId: '123', userId: 'a.b' }, status: 400 },
        ],
        async handle({ params: { assetId, userId } }) {
          const outcome = await playView(deps, assetId, userId);
          if (outcome.kind === 'not_found') {
            answers.inc({ outcome: 'not_found' });
            throw assetNotFound(assetId);
          }
          if (outcome.kind === 'unavailable') {
            answers.inc({ outcome: 'unavailable' });
            throw new HttpError('metadata_unavailable', 'the metadata service did not answer; try again');
          }
          const { playback } = outcome;
          answers.inc({ outcome: playback.degraded.length > 0 ? 'degraded' : 'complete' });
          for (const part of playback.degraded) degradedParts.inc({ part });
          return playback;
        },
      }),
    ],
  };
}
