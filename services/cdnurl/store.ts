import type { PoolClient } from 'pg';
import type { Database } from '../platform/database';
import { createRecordStore, seedEmptyTable, type RecordTable } from '../platform/record-store';

export interface UrlStore {
  get(assetId: string): Promise<string | undefined>;
  put(assetId: string, url: string): Promise<void>;
}

/** Asset 456 has no URL on purpose: play answers it with `url: null`. */
export const seedUrls: Record<string, string> = { '123': 'path/to/asset123.mp4' };

const urls: RecordTable<{ url: string }> = { table: 'cdnurl.urls', columns: ['url'] };

export const seedUrlTable = (client: PoolClient) =>
  seedEmptyTable(client, urls, Object.fromEntries(Object.entries(seedUrls).map(([id, url]) => [id, { url }])));

export function createUrlStore(db: Database): UrlStore {
  const records = createRecordStore(db, urls);
  return {
    get: async (assetId) => (await records.get(assetId))?.url,
    put: (assetId, url) => records.put(assetId, { url }),
  };
}
