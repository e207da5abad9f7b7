import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { catalogService } from '../platform/catalog-service';
import { runService } from '../platform/run-service';
import { urlCatalog } from './routes';

void runService(catalogService(urlCatalog, __dirname));
