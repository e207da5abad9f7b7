import type { AssetMetadata } from '../contracts/metadata';
import type { RecordTable } from '../platform/record-store';

export const seedMetadata: Record<string, AssetMetadata> = {
  '123': { title: 'It', genre: 'horror', summary: 'A very scary movie' },
  '456': { title: 'Terminator', genre: 'action', summary: 'Summary for terminator' },
};

export const assets: RecordTable<AssetMetadata> = { table: 'metadata.assets', columns: ['title', 'genre', 'summary'] };
