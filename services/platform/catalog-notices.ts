import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import type { Logger } from './log';
import type { NatsLink } from './nats';
import { idSchema } from './validation';

/** Notices are published on `<prefix>.<service>.<assetId>`. */
export const CATALOG_CHANGED_PREFIX = 'catalog.changed';

const catalogNoticeSchema = z.object({
  assetId: idSchema,
  /** The catalog service that changed. */
  service: idSchema,
  changedAt: z.string().datetime(),
});
export type CatalogNotice = z.infer<typeof catalogNoticeSchema>;

/**
 * After a committed write: a core NATS message on
 * `catalog.changed.<service>.<assetId>`. A hint, never the data: when NATS is
 * away it is skipped (and logged), and caches fall back on their TTL.
 */
export function publishCatalogChange(link: NatsLink, log: Logger, service: string, assetId: string): void {
  const nc = link.current();
  const notice: CatalogNotice = { assetId, service, changedAt: new Date().toISOString() };
  if (!nc) {
    log.warn({ assetId }, 'catalog change notice not sent: NATS is away; caches catch up within their TTL');
    return;
  }
  nc.publish(`${CATALOG_CHANGED_PREFIX}.${service}.${assetId}`, JSON.stringify(notice));
}

/** Calls `onNotice` for every valid notice on `nc`; malformed ones are ignored. */
export function subscribeCatalogChanges(nc: NatsConnection, onNotice: (notice: CatalogNotice) => void): Subscription {
  return nc.subscribe(`${CATALOG_CHANGED_PREFIX}.>`, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const parsed = catalogNoticeSchema.safeParse(JSON.parse(msg.string()));
        if (parsed.success) onNotice(parsed.data);
      } catch {
        // Not JSON: not ours to act on.
      }
    },
  });
}
