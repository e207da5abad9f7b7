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
  examples: {
    read: [
      { name: 'seeded', summary: 'a seeded asset', params: { assetId: '123' }, status: 200 },
      { name: 'unknown', summary: 'an asset nobody wrote', params: { assetId: 'ghost' }, status: 404 },
      { name: 'invalidId', summary: 'an id with a dot', params: { assetId: 'a.b' }, status: 400 },
    ],
    write: [
      { name: 'create', summary: 'a new asset', params: { assetId: 'alien' }, headers: admin, body: alien, status: 200 },
      { name: 'noToken', summary: 'without a token', params: { assetId: 'alien' }, body: alien, status: 401 },
      {
        name: 'wrongToken',
        summary: 'with a wrong token',
        params: { assetId: 'alien' },
        headers: { Authorization: 'Bearer not-the-token' },
        body: alien,
        status: 403,
      },
      {
        name: 'missingField',
        summary: 'without a summary',
        params: { assetId: 'alien' },
        headers: admin,
        body: { title: 'Alien', genre: 'sci-fi' },
        status: 400,
      },
      {
        name: 'badJson',
        summary: 'a body that is not JSON',
        params: { assetId: 'alien' },
        headers: admin,
        raw: { contentType: 'application/json', text: '{"title":' },
        status: 400,
      },
      {
        name: 'notJson',
        summary: 'a body in another content type',
        params: { assetId: 'alien' },
        headers: admin,
        raw: { contentType: 'text/plain', text: 'Alien' },
        status: 415,
      },
      { name: 'noBody', summary: 'no body at all', params: { assetId: 'alien' }, headers: admin, status: 400 },
      { name: 'invalidId', summary: 'an id with a space', params: { assetId: 'a b' }, headers: admin, body: alien, status: 400 },
    ],
  },
};
