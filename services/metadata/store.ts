import type { PoolClient } from 'pg';
import type { AssetMetadata } from '../contracts/metadata';
import { createRecordStore, seedEmptyTable, type RecordStore, type RecordTable } from '../platform/record-store';
import type { Database } from '../platform/database';

export type MetadataStore = RecordStore<AssetMetadata>;

export const seedMetadata: Record<string, AssetMetadata> = {
  '123': { title: 'It', genre: 'horror', summary: 'A very scary movie' },
  '456': { title: 'Terminator', genre: 'action', summary: 'Summary for terminator' },
};

export const assets: RecordTable<AssetMetadata> = { table: 'metadata.assets', columns: ['title', 'genre', 'summary'] };

export const seedMetadataTable = (client: PoolClient) => seedEmptyTable(client, assets, seedMetadata);
export const createMetadataStore = (db: Database): MetadataStore => createRecordStore(db, assets);
