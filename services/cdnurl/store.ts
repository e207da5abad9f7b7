import type { PoolClient } from 'pg';
import type { PlayableUrl } from '../contracts/cdnurl';
import { createRecordStore, seedEmptyTable, type RecordStore, type RecordTable } from '../platform/record-store';
import type { Database } from '../platform/database';

export type UrlStore = RecordStore<PlayableUrl>;

/** Asset 456 has no URL on purpose: play answers it with `url: null`. */
export const seedUrls: Record<string, PlayableUrl> = { '123': { url: 'path/to/asset123.mp4' } };

export const urls: RecordTable<PlayableUrl> = { table: 'cdnurl.urls', columns: ['url'] };

export const seedUrlTable = (client: PoolClient) => seedEmptyTable(client, urls, seedUrls);
export const createUrlStore = (db: Database): UrlStore => createRecordStore(db, urls);
