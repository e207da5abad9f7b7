import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { catalogService } from '../platform/catalog-service';
import { runService } from '../platform/run-service';
import { metadataCatalog } from './routes';

void runService(catalogService(metadataCatalog, __dirname));
