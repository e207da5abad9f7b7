import type { Express } from 'express';
import { createCatalogApp, type CatalogAppDeps } from '../platform/catalog-service';
import { urlCatalog } from './routes';
import type { PlayableUrl } from '../contracts/cdnurl';

export const createApp = (deps: CatalogAppDeps<PlayableUrl>): Express => createCatalogApp(urlCatalog, deps);
