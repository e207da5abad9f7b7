import { z } from 'zod';
import { EXAMPLE_ADMIN_TOKEN } from '../platform/bearer-auth';
import type { Catalog } from '../platform/catalog-service';
import { storableText } from '../platform/validation';
import { assets, seedMetadata, type AssetMetadata } from './store';

const metadataBody = z
  .object({
    title: z.string().trim().min(1).max(200).pipe(storableText),
    genre: z.string().trim().min(1).max(50).pipe(storableText),
    summary: z.string().max(2000).pipe(storableText),
  })
  .strict();

const admin = { Authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const alien = { title: 'Alien', genre: 'sci-fi', summary: 'In space no one can hear you scream' };

/** Title, genre and summary per asset: the catalog play shows. */
export const metadataCatalog: Catalog<AssetMetadata> = {
  name: 'metadata',
  port: 8081,
  path: '/content/asset',
  table: assets,
  body: metadataBody,
  seed: seedMetadata,
  summaries: { read: "Read an asset's title, genre and summary", write: "Create or replace an asset's metadata" },
  sample: alien,
  examples: {
    write: [
      { name: 'create', summary: 'a new asset', params: { assetId: 'alien' }, headers: admin, body: alien, status: 200 },
      {
        name: 'missingField',
        summary: 'without a summary',
        params: { assetId: 'alien' },
        headers: admin,
        body: { title: 'Alien', genre: 'sci-fi' },
        status: 400,
      },
    ],
  },
};
