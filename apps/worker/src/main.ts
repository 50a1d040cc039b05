import { runService } from '@memfleet/service/run-service';
import { startWorker } from './worker-runtime.ts';

await runService('worker', startWorker);
