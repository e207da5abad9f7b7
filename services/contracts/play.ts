import { z } from 'zod';
import type { ErrorCode } from '../platform/errors';
import { idSchema } from '../platform/validation';
import { metadataRecord } from './metadata';

/** The backends a play can answer without: it names them in `degraded`. */
export const degradedPartSchema = z.enum(['cdnurl', 'reporting']);
export type DegradedPart = z.infer<typeof degradedPartSchema>;

const views = z.number().int().nonnegative().nullable();
/** Play's answer to `POST /play/asset/:assetId/user/:userId`. */
export const playbackSchema = z
  .object({
    id: idSchema,
    ...metadataRecord.shape,
    url: z.string().nullable().describe('null when cdnurl has no URL for the asset or did not answer'),
    assetviews: views,
    userviews: views,
    degraded: z.array(degradedPartSchema).describe('The backends that did not answer in time or failed'),
    recorded: z.boolean().describe('false when NATS did not store the view in time: it waits in the outbox'),
  })
  .strict();
export type Playback = z.infer<typeof playbackSchema>;

/**
 * Play's 503 answers: nothing was done (no view emitted), and they say to try
 * again. A caller may send the play again; play's document lists them.
 */
export const PLAY_RETRYABLE_ERRORS = ['metadata_unavailable', 'overloaded'] as const satisfies readonly ErrorCode[];
