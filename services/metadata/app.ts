import type { Express } from 'express';
import { createCatalogApp, type CatalogAppDeps } from '../platform/catalog-service';
import { metadataCatalog } from './routes';
import type { AssetMetadata } from '../contracts/metadata';

export const createApp = (deps: CatalogAppDeps<AssetMetadata>): Express => createCatalogApp(metadataCatalog, deps);
