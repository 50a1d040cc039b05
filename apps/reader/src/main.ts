import { runService } from '@memfleet/service/run-service';
import { startReader } from './reader-runtime.ts';

await runService('reader', startReader, { processes: (config) => config.reader.processes });
