import { MemoryRecordStore } from '../platform/memory-store';

export interface AssetMetadata {
  title: string;
  genre: string;
  summary: string;
}

/** What the metadata service needs of its storage; narrow so a durable store can replace memory. */
export interface MetadataStore {
  get(assetId: string): Promise<AssetMetadata | undefined>;
  put(assetId: string, metadata: AssetMetadata): Promise<void>;
}

export const seedMetadata: Record<string, AssetMetadata> = {
  '123': { title: 'It', genre: 'horror', summary: 'A very scary movie' },
  '456': { title: 'Terminator', genre: 'action', summary: 'Summary for terminator' },
};

export const createMemoryMetadataStore = (): MetadataStore => new MemoryRecordStore(seedMetadata);
