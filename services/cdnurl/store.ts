import { MemoryRecordStore } from '../platform/memory-store';

/** What the cdnurl service needs of its storage; narrow so a durable store can replace memory. */
export interface UrlStore {
  get(assetId: string): Promise<string | undefined>;
  put(assetId: string, url: string): Promise<void>;
}

/** Asset 456 has no URL on purpose: play answers it with `url: null`. */
export const seedUrls: Record<string, string> = { '123': 'path/to/asset123.mp4' };

export const createMemoryUrlStore = (): UrlStore => new MemoryRecordStore(seedUrls);
