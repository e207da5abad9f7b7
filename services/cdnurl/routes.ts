import { Router } from 'express';
import { z } from 'zod';
import { requireBearerToken } from '../platform/bearer-auth';
import { assetNotFound } from '../platform/errors';
import { idSchema, parseJsonBody, parseParams } from '../platform/validation';
import type { UrlStore } from './store';

const assetParams = z.object({ assetId: idSchema });
/** Absolute http(s) URLs with a host, or CDN-relative paths as in the seed; nothing that could run script. */
const playableUrl = z
  .string()
  .trim()
  .min(1)
  .max(2048)
  .refine((u) => isHttpUrl(u) || /^[A-Za-z0-9_\-./]+$/.test(u), 'must be an http(s) URL or a relative path');

function isHttpUrl(candidate: string): boolean {
  if (!/^https?:\/\//i.test(candidate) || /[\s"'<>`]/.test(candidate)) return false;
  try {
    return new URL(candidate).hostname !== '';
  } catch {
    return false;
  }
}
const urlBody = z.object({ url: playableUrl }).strict();

export function urlRoutes(store: UrlStore, adminToken: string | undefined, allowOpenWrites: boolean, onChanged?: (assetId: string) => void): Router {
  const router = Router();
  router.get('/url/asset/:assetId', async (req, res) => {
    const { assetId } = parseParams(assetParams, req);
    const url = await store.get(assetId);
    if (url === undefined) throw assetNotFound(assetId);
    res.json({ id: assetId, url });
  });
  router.post('/url/asset/:assetId', requireBearerToken(adminToken, 'catalog writes', allowOpenWrites ? 'open' : 'closed'), async (req, res) => {
    const { assetId } = parseParams(assetParams, req);
    await store.put(assetId, parseJsonBody(urlBody, req).url);
    onChanged?.(assetId);
    res.json({ status: 'ok' });
  });
  return router;
}
