import type { PlayableUrl } from '../contracts/cdnurl';
import type { RecordTable } from '../platform/record-store';

/** Asset 456 has no URL on purpose: play answers it with `url: null`. */
export const seedUrls: Record<string, PlayableUrl> = { '123': { url: 'path/to/asset123.mp4' } };

export const urls: RecordTable<PlayableUrl> = { table: 'cdnurl.urls', columns: ['url'] };
