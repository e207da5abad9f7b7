import { z } from 'zod';
import { idSchema, storableText } from '../platform/validation';

/** Metadata's routes: `GET` and `POST <METADATA_PATH>/:assetId`. */
export const METADATA_PATH = '/content/asset';
/** The paged list of assets: `GET <ASSET_LIST_PATH>`, then `GET <ASSET_LIST_PATH>/after/:assetId` for the next page. */
export const ASSET_LIST_PATH = '/content/assets';

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

/** One page of the asset list, in id order: `next` is the id to ask the page after (`.../after/<next>`), null on the last page. */
export const assetPageSchema = z
  .object({
    items: z.array(z.object({ id: idSchema, ...metadataRecord.shape }).strict()),
    next: idSchema.nullable().describe('the last id of this page when more follow, else null'),
  })
  .strict();
export type AssetPage = z.infer<typeof assetPageSchema>;
