import { Router } from 'express';
import { z } from 'zod';
import { requireBearerToken } from '../platform/bearer-auth';
import { assetNotFound } from '../platform/errors';
import { idSchema, parseJsonBody, parseParams, storableText } from '../platform/validation';
import type { MetadataStore } from './store';

const assetParams = z.object({ assetId: idSchema });
const metadataBody = z
  .object({
    title: storableText.pipe(z.string().trim().min(1).max(200)),
    genre: storableText.pipe(z.string().trim().min(1).max(50)),
    summary: storableText.pipe(z.string().max(2000)),
  })
  .strict();

export function metadataRoutes(store: MetadataStore, adminToken: string | undefined, allowOpenWrites: boolean, onChanged?: (assetId: string) => void): Router {
  const router = Router();
  router.get('/content/asset/:assetId', async (req, res) => {
    const { assetId } = parseParams(assetParams, req);
    const metadata = await store.get(assetId);
    if (!metadata) throw assetNotFound(assetId);
    res.json({ id: assetId, ...metadata });
  });
  router.post('/content/asset/:assetId', requireBearerToken(adminToken, 'catalog writes', allowOpenWrites ? 'open' : 'closed'), async (req, res) => {
    const { assetId } = parseParams(assetParams, req);
    await store.put(assetId, parseJsonBody(metadataBody, req));
    onChanged?.(assetId);
    res.json({ status: 'ok' });
  });
  return router;
}
