// HEALTHCHECK of the memfleet image: healthy when the memfleet process of this container answers
// GET /healthz with 200. A container runs one process, so whichever of its ports answers decides:
// the API's (API_PORT), the reader's (READER_PORT) or the worker's metrics server
// (WORKER_METRICS_PORT). Exit 0 healthy, 1 not.
import { get } from 'node:http';
import process from 'node:process';

const TIMEOUT_MS = 2000;
const env = process.env;
const ports = [
  env.API_PORT || '3000',
  env.READER_PORT || '3001',
  env.WORKER_METRICS_PORT || '9464',
];

/** @param {string} port @returns {Promise<boolean>} */
function healthy(port) {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/healthz', timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const answers = await Promise.all(ports.map(healthy));
process.exit(answers.includes(true) ? 0 : 1);
