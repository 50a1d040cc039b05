import { execFile } from 'node:child_process';
import { access, constants, readdir, realpath } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';

const REQUIRED = ['initdb', 'postgres', 'pg_ctl'] as const;

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function hasServerBinaries(dir: string): Promise<boolean> {
  const found = await Promise.all(REQUIRED.map((name) => isExecutable(join(dir, name))));
  return found.every(Boolean);
}

function pgConfigBinDir(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('pg_config', ['--bindir'], { timeout: 5000 }, (err, stdout) => {
      resolve(err ? undefined : stdout.trim() || undefined);
    });
  });
}

async function debianBinDirs(): Promise<string[]> {
  let versions: string[];
  try {
    versions = await readdir('/usr/lib/postgresql');
  } catch {
    return [];
  }
  return versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => `/usr/lib/postgresql/${v}/bin`);
}

async function pathBinDirs(): Promise<string[]> {
  const dirs: string[] = [];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '' || !(await isExecutable(join(dir, 'initdb')))) continue;
    // Debian links only some tools into PATH; the real directory holds all of them.
    dirs.push(dirname(await realpath(join(dir, 'initdb'))), dir);
  }
  return dirs;
}

let cached: Promise<string> | undefined;

/**
 * Finds the directory holding `initdb`, `postgres` and `pg_ctl`. Looks, in order, at `$PG_BIN`
 * (exported by scripts/lib/system-deps.sh), `pg_config --bindir`, the highest
 * `/usr/lib/postgresql/<version>/bin`, and PATH. Rejects with install advice if none has them.
 */
export function findPostgresBinDir(): Promise<string> {
  cached ??= (async () => {
    const fromEnv = process.env.PG_BIN;
    const pgConfig = await pgConfigBinDir();
    const candidates = [
      ...(fromEnv ? [fromEnv] : []),
      ...(pgConfig ? [pgConfig] : []),
      ...(await debianBinDirs()),
      ...(await pathBinDirs()),
    ];
    for (const dir of candidates) {
      if (await hasServerBinaries(dir)) return dir;
    }
    cached = undefined;
    throw new Error(
      'PostgreSQL server binaries (initdb, postgres, pg_ctl) not found; install them ' +
        '(apt-get install -y postgresql) or run via scripts/test.sh, which does',
    );
  })();
  return cached;
}
