import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { SERVICE_NODE_ARGS } from './app-process.ts';
import { repoRoot } from './repo-root.ts';

describe('SERVICE_NODE_ARGS', () => {
  const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');
  const flags = SERVICE_NODE_ARGS.join(' ');

  it('are the options the start command runs the API, the reader and the workers with', () => {
    const start = read('scripts/start.sh');
    expect(start).to.include(`local node_args=(${flags} --import tsx)`);
    for (const app of ['api', 'reader', 'worker']) {
      expect(start).to.match(
        new RegExp(`node "\\$\\{node_args\\[@\\]\\}" apps/${app}/src/main\\.ts`),
      );
    }
  });

  it("are the options the image's entrypoint runs them with", () => {
    expect(read('docker/entrypoint.sh')).to.include(
      `exec node ${flags} --import tsx "apps/$process/src/main.ts" "$@"`,
    );
  });
});
