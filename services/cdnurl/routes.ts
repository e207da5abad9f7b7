import { URL_PATH, urlRecord, urlWrite, type PlayableUrl } from '../contracts/cdnurl';
import { SERVICES } from '../contracts/services';
import { EXAMPLE_ADMIN_TOKEN } from '../platform/bearer-auth';
import type { Catalog } from '../platform/catalog-service';
import { seedUrls, urls } from './store';

const admin = { Authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const cdnUrl = { url: 'https://cdn.example.com/alien.mp4' };

/** The playable URL per asset. */
export const urlCatalog: Catalog<PlayableUrl> = {
  name: 'cdnurl',
  port: SERVICES.cdnurl.port,
  path: URL_PATH,
  table: urls,
  record: urlRecord,
  body: urlWrite,
  seed: seedUrls,
  summaries: { read: "Read an asset's playable URL", write: "Set an asset's playable URL: an absolute http(s) URL or a CDN-relative path" },
  sample: cdnUrl,
  examples: {
    read: [{ name: 'noUrl', summary: 'an asset without a URL (456 in the seed)', params: { assetId: '456' }, status: 404 }],
    write: [
      { name: 'absolute', summary: 'an absolute URL', params: { assetId: 'alien' }, headers: admin, body: cdnUrl, status: 200 },
      { name: 'relative', summary: 'a CDN-relative path', params: { assetId: 'trailer' }, headers: admin, body: { url: 'path/to/trailer.mp4' }, status: 200 },
      {
        name: 'script',
        summary: 'a URL that could run script',
        params: { assetId: 'alien' },
        headers: admin,
        body: { url: 'javascript:alert(1)' },
        status: 400,
      },
    ],
  },
};
