import { z } from 'zod';
import { EXAMPLE_ADMIN_TOKEN, catalogWriteAuth } from '../platform/bearer-auth';
import { assetNotFound } from '../platform/errors';
import { notFoundAnswer, operation, type ServiceApi } from '../platform/openapi';
import { idSchema, storableText } from '../platform/validation';
import type { MetadataStore } from './store';

const assetParams = z.object({ assetId: idSchema });
const metadataBody = z
  .object({
    title: z.string().trim().min(1).max(200).pipe(storableText),
    genre: z.string().trim().min(1).max(50).pipe(storableText),
    summary: z.string().max(2000).pipe(storableText),
  })
  .strict();
const metadataAnswer = z.object({ id: idSchema, title: z.string(), genre: z.string(), summary: z.string() }).strict();

const admin = { Authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const alien = { title: 'Alien', genre: 'sci-fi', summary: 'In space no one can hear you scream' };

export function metadataApi(store: MetadataStore, adminToken: string | undefined, allowOpenWrites: boolean, onChanged?: (assetId: string) => void): ServiceApi {
  return {
    service: 'metadata',
    operations: [
      operation({
        method: 'get',
        path: '/content/asset/:assetId',
        summary: "Read an asset's title, genre and summary",
        params: assetParams,
        ok: { description: 'The asset', schema: metadataAnswer },
        responses: { 404: notFoundAnswer('Asset not found') },
        examples: [
          { name: 'seeded', summary: 'a seeded asset', params: { assetId: '123' }, status: 200 },
          { name: 'unknown', summary: 'an asset nobody wrote', params: { assetId: 'ghost' }, status: 404 },
          { name: 'invalidId', summary: 'an id with a dot', params: { assetId: 'a.b' }, status: 400 },
        ],
        async handle({ params: { assetId } }) {
          const metadata = await store.get(assetId);
          if (!metadata) throw assetNotFound(assetId);
          return { id: assetId, ...metadata };
        },
      }),
      operation({
        method: 'post',
        path: '/content/asset/:assetId',
        summary: "Create or replace an asset's metadata",
        params: assetParams,
        body: metadataBody,
        auth: catalogWriteAuth(adminToken, allowOpenWrites),
        ok: { description: 'Stored', schema: z.object({ status: z.literal('ok') }).strict() },
        examples: [
          { name: 'create', summary: 'a new asset', params: { assetId: 'alien' }, headers: admin, body: alien, status: 200 },
          { name: 'noToken', summary: 'without a token', params: { assetId: 'alien' }, body: alien, status: 401 },
          { name: 'wrongToken', summary: 'with a wrong token', params: { assetId: 'alien' }, headers: { Authorization: 'Bearer not-the-token' }, body: alien, status: 403 },
          { name: 'missingField', summary: 'without a summary', params: { assetId: 'alien' }, headers: admin, body: { title: 'Alien', genre: 'sci-fi' }, status: 400 },
          { name: 'badJson', summary: 'a body that is not JSON', params: { assetId: 'alien' }, headers: admin, raw: { contentType: 'application/json', text: '{"title":' }, status: 400 },
          { name: 'notJson', summary: 'a body in another content type', params: { assetId: 'alien' }, headers: admin, raw: { contentType: 'text/plain', text: 'Alien' }, status: 415 },
          { name: 'noBody', summary: 'no body at all', params: { assetId: 'alien' }, headers: admin, status: 400 },
          { name: 'invalidId', summary: 'an id with a space', params: { assetId: 'a b' }, headers: admin, body: alien, status: 400 },
        ],
        async handle({ params: { assetId }, body }) {
          await store.put(assetId, body);
          onChanged?.(assetId);
          return { status: 'ok' as const };
        },
      }),
    ],
  };
}
