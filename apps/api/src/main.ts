import { runService } from '@memfleet/service/run-service';
import { startApi } from './api-runtime.ts';

await runService('api', startApi, { processes: (config) => config.api.processes });
