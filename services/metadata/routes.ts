import { ASSET_LIST_PATH, METADATA_PATH, assetPageSchema, metadataRecord, metadataWrite, type AssetMetadata } from '../contracts/metadata';
import { SERVICES } from '../contracts/services';
import { EXAMPLE_ADMIN_TOKEN } from '../platform/bearer-auth';
import type { Catalog } from '../platform/catalog-service';
import { assets, seedMetadata } from './store';

/** A page of the list: enough for a picker, small enough to answer at once. */
const ASSET_PAGE_SIZE = 20;
const admin = { Authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const alien = { title: 'Alien', genre: 'sci-fi', summary: 'In space no one can hear you scream' };

/** Title, genre and summary per asset: the catalog play shows. */
export const metadataCatalog: Catalog<AssetMetadata> = {
  name: 'metadata',
  port: SERVICES.metadata.port,
  path: METADATA_PATH,
  table: assets,
  record: metadataRecord,
  body: metadataWrite,
  seed: seedMetadata,
  summaries: { read: "Read an asset's title, genre and summary", write: "Create or replace an asset's metadata" },
  sample: alien,
  list: { path: ASSET_LIST_PATH, summary: 'List the assets, a page at a time', pageSize: ASSET_PAGE_SIZE, schema: assetPageSchema },
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
