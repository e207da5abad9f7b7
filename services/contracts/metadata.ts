import { z } from 'zod';
import { storableText } from '../platform/validation';

/** Metadata's routes: `GET` and `POST <METADATA_PATH>/:assetId`. */
export const METADATA_PATH = '/content/asset';

/** An asset's title, genre and summary: what metadata answers (with the id) and play shows. */
export const metadataRecord = z.object({ title: z.string(), genre: z.string(), summary: z.string() });
export type AssetMetadata = z.infer<typeof metadataRecord>;

/** What a write must send: the same fields, within the rules of what is stored. */
export const metadataWrite = z
  .object({
    title: z.string().trim().min(1).max(200).pipe(storableText),
    genre: z.string().trim().min(1).max(50).pipe(storableText),
    summary: z.string().max(2000).pipe(storableText),
  })
  .strict();
