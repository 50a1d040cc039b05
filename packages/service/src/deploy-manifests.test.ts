import { execFile, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { expect } from 'chai';
import { DCLinter } from 'dclint';
import { Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate as validateDockerfile } from 'dockerfile-utils';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '@memfleet/config/load-config';

/**
 * The container image (docker/), the compose file and the Kubernetes manifests (infra/k8s) are
 * checked offline, without Docker or a cluster: the Dockerfile with dockerfile-utils' validator,
 * the compose file against the Compose Specification's JSON schema and dclint's rules, every
 * Kubernetes object against the API's schema (kubernetes-models; KEDA's ScaledObject against its
 * CRD's schema), and all of them against what the processes need: the environment each container
 * gets must pass memfleet's config, probes must hit the ports the processes listen on, and the
 * worker's grace period must outlast its shutdown. Each check also runs on a broken copy, to show
 * it can fail.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCKER = join(ROOT, 'docker');
const K8S = join(ROOT, 'infra/k8s');
const read = (path: string): string => readFileSync(path, 'utf8');

/** The processes the image runs and the port each one's /healthz and /readyz answer on. */
const PROCESSES = {
  api: { portVar: 'API_PORT', defaultPort: 3000 },
  reader: { portVar: 'READER_PORT', defaultPort: 3001 },
  worker: { portVar: 'WORKER_METRICS_PORT', defaultPort: 9464 },
} as const;
type ProcessName = keyof typeof PROCESSES;
const isProcess = (name: string): name is ProcessName => Object.hasOwn(PROCESSES, name);
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 25_000;
const DEFAULT_WORKER_CONCURRENCY = 32;

type Env = Record<string, string>;

/** Every variable of the README's configuration table, and the runtime's own the image sets. */
function documentedVariables(): Set<string> {
  const readme = read(join(ROOT, 'README.md'));
  const start = readme.indexOf('## Configuration');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const names = new Set(['NODE_ENV', 'TSX_DISABLE_CACHE']);
  for (const line of section.split('\n')) {
    const firstCell = line.split('|')[1] ?? '';
    for (const m of firstCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1] ?? '');
  }
  return names;
}

/** Problems of the environment a memfleet container gets: unknown names, or a config error. */
function envProblems(where: string, env: Env): string[] {
  const documented = documentedVariables();
  const problems = Object.keys(env)
    .filter((name) => !documented.has(name))
    .map((name) => `${where}: ${name} is not a documented memfleet setting`);
  try {
    loadConfig(env);
  } catch (err: unknown) {
    problems.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return problems;
}

function metricNamesExported(): Set<string> {
  const dir = join(ROOT, 'packages/metrics/src');
  const names = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.includes('.test.'))) {
    for (const m of read(join(dir, file)).matchAll(/name: '(memfleet_[a-z0-9_]+)'/g)) {
      names.add(m[1] ?? '');
    }
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Stage {
  name: string;
  instructions: Instruction[];
}

function stages(text: string): Stage[] {
  const result: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const args = instruction.getArguments().map((a) => a.getValue());
      const as = args.findIndex((a) => a.toLowerCase() === 'as');
      result.push({ name: as >= 0 ? (args[as + 1] ?? '') : '', instructions: [] });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

const argsOf = (i: Instruction): string => i.getArgumentsContent() ?? '';

/** `ARG NAME=value` defaults of the whole Dockerfile. */
function argDefaults(text: string): Env {
  const out: Env = {};
  for (const i of DockerfileParser.parse(text).getInstructions()) {
    if (i.getKeyword() !== 'ARG') continue;
    const [name, value] = argsOf(i).split('=', 2);
    if (name !== undefined && value !== undefined) out[name.trim()] = value.trim();
  }
  return out;
}

/** The environment the final stage's ENV instructions give every container. */
function imageEnv(text: string): Env {
  const out: Env = {};
  for (const i of stages(text).at(-1)?.instructions ?? []) {
    if (i.getKeyword() !== 'ENV') continue;
    for (const m of argsOf(i).matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) out[m[1] ?? ''] = m[2] ?? '';
  }
  return out;
}

function dockerfileProblems(text: string): string[] {
  const problems = validateDockerfile(text).map(
    (d) =>
      `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`,
  );
  const all = stages(text);
  const final = all.at(-1);
  if (all.length < 2 || final === undefined) return [...problems, 'not a multi-stage build'];
  const last = (keyword: string): Instruction | undefined =>
    final.instructions.filter((i) => i.getKeyword() === keyword).at(-1);

  const user = last('USER');
  const uid = /^(\d+)(:\d+)?$/.exec(user === undefined ? '' : argsOf(user))?.[1];
  if (uid === undefined || Number(uid) === 0) {
    problems.push('the final stage must run as a numeric non-root USER');
  }
  const entrypoint = last('ENTRYPOINT');
  let argv: unknown;
  try {
    argv = JSON.parse(entrypoint === undefined ? '' : argsOf(entrypoint));
  } catch {
    argv = undefined;
  }
  if (
    !Array.isArray(argv) ||
    argv[0] !== '/usr/bin/tini' ||
    argv.at(-1) !== '/app/docker/entrypoint.sh'
  ) {
    problems.push('ENTRYPOINT must be exec form: tini, then docker/entrypoint.sh');
  }
  const env = imageEnv(text);
  for (const host of ['API_HOST', 'READER_HOST', 'WORKER_METRICS_HOST']) {
    if (env[host] !== '0.0.0.0') problems.push(`${host} must be 0.0.0.0 in a container`);
  }
  const healthcheck = last('HEALTHCHECK');
  if (healthcheck === undefined || /^NONE\b/i.test(argsOf(healthcheck))) {
    problems.push('the final stage needs a HEALTHCHECK');
  }

  const root = JSON.parse(read(join(ROOT, 'package.json'))) as {
    packageManager: string;
    devDependencies: Record<string, string>;
  };
  const args = argDefaults(text);
  const pins: [string, string | undefined][] = [
    ['PNPM_VERSION', root.packageManager.replace(/^pnpm@/, '')],
    ['TURBO_VERSION', root.devDependencies.turbo],
    ['TSX_VERSION', root.devDependencies.tsx],
  ];
  for (const [arg, version] of pins) {
    if (args[arg] !== version)
      problems.push(`${arg} is ${args[arg]}, package.json pins ${version}`);
  }

  const prune = all
    .flatMap((s) => s.instructions)
    .find((i) => i.getKeyword() === 'RUN' && argsOf(i).includes('turbo prune'));
  for (const app of ['api', 'worker', 'reader', 'cli']) {
    if (prune === undefined || !argsOf(prune).includes(`@memfleet/${app} `)) {
      problems.push(`turbo prune must keep @memfleet/${app}`);
    }
  }

  const stageNames = new Set(all.map((s) => s.name));
  for (const copy of all.flatMap((s) => s.instructions)) {
    if (!(copy instanceof Copy)) continue;
    const from = copy.getFromFlag()?.getValue();
    if (from !== undefined && from !== null) {
      if (!stageNames.has(from)) problems.push(`COPY --from=${from}: no such stage`);
      continue;
    }
    for (const source of copy.getArguments().slice(0, -1)) {
      if (!existsSync(join(ROOT, source.getValue()))) {
        problems.push(`COPY ${source.getValue()}: not in the build context`);
      }
    }
  }
  return problems;
}

describe('docker/Dockerfile', () => {
  const text = read(join(DOCKER, 'Dockerfile'));

  it('passes the validator and the image rules', () => {
    expect(dockerfileProblems(text)).to.deep.equal([]);
  });

  it('fails a broken copy: bad instruction, root user, shell entrypoint, stale pin, loopback', () => {
    const broken = text
      .replace('WORKDIR /app\nCOPY --from=deps', 'WORKDIR /app\nCOPPY --from=deps')
      .replace('USER 1000:1000', 'USER root')
      .replace(/ENTRYPOINT \[.*\]/, 'ENTRYPOINT /app/docker/entrypoint.sh')
      .replace('ARG TSX_VERSION=4', 'ARG TSX_VERSION=3')
      .replace('READER_HOST=0.0.0.0', 'READER_HOST=127.0.0.1');
    const problems = dockerfileProblems(broken).join('\n');
    expect(problems).to.match(/COPPY/i);
    expect(problems).to.include('non-root USER');
    expect(problems).to.include('ENTRYPOINT must be exec form');
    expect(problems).to.include('TSX_VERSION');
    expect(problems).to.include('READER_HOST must be 0.0.0.0');
  });

  it('keeps node_modules, git and the compose secrets out of the build context', () => {
    const ignored = read(join(DOCKER, 'Dockerfile.dockerignore')).split('\n');
    expect(ignored).to.include.members(['.git', '**/node_modules', 'docker/.env', '.memfleet']);
  });
});

// ---------------------------------------------------------------------------------------------
// entrypoint and healthcheck

describe('docker/entrypoint.sh', () => {
  let bin: string;
  before(() => {
    bin = mkdtempSync(join(tmpdir(), 'memfleet-entrypoint-'));
    // A stand-in for node that prints its pid, working directory and arguments.
    writeFileSync(join(bin, 'node'), '#!/bin/sh\necho "$$|$PWD|$*"\n');
    chmodSync(join(bin, 'node'), 0o755);
  });
  after(() => rmSync(bin, { recursive: true, force: true }));

  const run = (...args: string[]) =>
    spawnSync('sh', [join(DOCKER, 'entrypoint.sh'), ...args], {
      cwd: tmpdir(),
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    });

  const cases: [string[], string][] = [
    [['api'], '--max-semi-space-size=32 --import tsx apps/api/src/main.ts'],
    [['worker'], '--max-semi-space-size=32 --import tsx apps/worker/src/main.ts'],
    [['reader'], '--max-semi-space-size=32 --import tsx apps/reader/src/main.ts'],
    [['migrate', 'up'], '--import tsx packages/db/src/migrate-cli.ts up'],
    [['memfleet', 'dlq', 'list'], '--import tsx apps/cli/src/main.ts dlq list'],
  ];
  for (const [args, expected] of cases) {
    it(`${args.join(' ')}: replaces itself with node (same pid) from the image root`, () => {
      const result = run(...args);
      expect(result.status, result.stderr).to.equal(0);
      const [pid, cwd, argv] = result.stdout.trim().split('|');
      expect(Number(pid)).to.equal(result.pid);
      expect(resolve(cwd ?? '')).to.equal(resolve(ROOT));
      expect(argv).to.equal(expected);
      const entry = expected.split(' ').find((arg) => arg.endsWith('.ts'));
      expect(existsSync(join(ROOT, entry ?? ''))).to.equal(true);
    });
  }

  it('refuses an unknown or missing process with exit 2 and the usage', () => {
    for (const args of [['scheduler'], []]) {
      const result = run(...args);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.include('usage:');
      expect(result.stdout).to.equal('');
    }
  });
});

describe('docker/healthcheck.js', () => {
  let server: Server;
  let status = 200;
  let port = 0;
  let closedPort = 0;

  before(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    port = (server.address() as AddressInfo).port;
    const probe = createServer();
    await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((done) => probe.close(() => done()));
  });
  after(async () => {
    await new Promise<void>((done) => server.close(() => done()));
  });

  // Asynchronous: the server answering the check runs in this process.
  const check = (ports: Record<string, number>): Promise<number | null> =>
    new Promise((done) => {
      const child = execFile(process.execPath, [join(DOCKER, 'healthcheck.js')], {
        env: {
          PATH: process.env.PATH,
          API_PORT: String(ports.API_PORT ?? closedPort),
          READER_PORT: String(ports.READER_PORT ?? closedPort),
          WORKER_METRICS_PORT: String(ports.WORKER_METRICS_PORT ?? closedPort),
        },
      });
      child.on('exit', (code) => done(code));
    });

  it('is healthy when the process answers /healthz on its port, whichever process it is', async () => {
    status = 200;
    expect(await check({ API_PORT: port })).to.equal(0);
    expect(await check({ WORKER_METRICS_PORT: port })).to.equal(0);
  });

  it('is unhealthy when nothing answers, or /healthz fails', async () => {
    expect(await check({})).to.equal(1);
    status = 503;
    expect(await check({ READER_PORT: port })).to.equal(1);
  });
});

// ---------------------------------------------------------------------------------------------
// compose

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: Record<string, { condition: string }> | string[];
  ports?: string[];
  volumes?: string[];
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` with the given variables. */
function interpolate(value: string, vars: Env): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_all, name: string, op, rest) => {
    const set = vars[name];
    if (set !== undefined && set !== '') return set;
    if (op === '?') throw new Error(`${name}: ${String(rest)}`);
    return op === '-' ? String(rest) : '';
  });
}

function envFile(path: string): Env {
  const out: Env = {};
  for (const line of read(path).split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m !== null) out[m[1] ?? ''] = m[2] ?? '';
  }
  return out;
}

const durationMs = (d: string): number => {
  const m = /^(\d+)(ms|s|m)$/.exec(d);
  if (m === null) return NaN;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
};

/** `path` is a compose file; relative bind mounts resolve from `mountBase` (its directory). */
async function composeProblems(path: string, mountBase = dirname(path)): Promise<string[]> {
  const linter = new DCLinter({
    quiet: true,
    debug: false,
    exclude: [],
    rules: {
      'no-duplicate-container-names': 2,
      'no-duplicate-exported-ports': 2,
      'no-quotes-in-volumes': 2,
      // Published ports must name the interface (127.0.0.1), not listen on every one.
      'no-unbound-port-interfaces': 2,
      'no-version-field': 2,
      'require-project-name-field': 2,
      'require-quotes-in-ports': 2,
      'service-image-require-explicit-tag': 2,
      // The app services build the one image and name it, on purpose.
      'no-build-and-image': 0,
      // Style rules: the file is ordered by start-up order, not alphabetically.
      'service-container-name-regex': 0,
      'service-dependencies-alphabetical-order': 0,
      'service-keys-order': 0,
      'service-ports-alphabetical-order': 0,
      'services-alphabetical-order': 0,
      'top-level-properties-order': 0,
    },
  });
  const problems = (await linter.lintFiles([path], false)).flatMap((r) =>
    r.messages.map((m) => `${basename(path)}:${m.line}: ${m.rule}: ${m.message}`),
  );
  if (problems.length > 0) return problems;

  const compose = parse(read(path), { merge: true }) as ComposeFile;
  const vars = envFile(join(DOCKER, 'env.example'));
  const services = compose.services;
  const dependsOn = (s: ComposeService, on: string): string | undefined =>
    Array.isArray(s.depends_on)
      ? s.depends_on.includes(on)
        ? 'service_started'
        : undefined
      : s.depends_on?.[on]?.condition;

  const migrate = services.migrate;
  if (migrate?.command?.[0] !== 'migrate')
    problems.push('a migrate service must run the migrations');
  for (const [name, service] of Object.entries(services)) {
    if (service.build === undefined) continue;
    const [role] = service.command ?? [];
    if (service.build.dockerfile !== 'docker/Dockerfile' || service.image !== services.api?.image) {
      problems.push(`${name}: must build docker/Dockerfile into the one memfleet image`);
    }
    const env: Env = {};
    try {
      for (const [k, v] of Object.entries(service.environment ?? {})) {
        env[k] = interpolate(String(v ?? ''), vars);
      }
    } catch (err: unknown) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
    if (role === 'migrate' || role === undefined) continue;
    problems.push(
      ...envProblems(`compose ${name}`, { ...imageEnv(read(join(DOCKER, 'Dockerfile'))), ...env }),
    );
    if (dependsOn(service, 'migrate') !== 'service_completed_successfully') {
      problems.push(`${name}: must start after migrate completed successfully`);
    }
    if (dependsOn(service, 'redis') !== 'service_healthy') {
      problems.push(`${name}: must start after redis is healthy`);
    }
    if (role === 'worker') {
      if ((service.ports ?? []).length > 0)
        problems.push('worker: publishes ports, so it cannot scale');
      const shutdown = Number(env.WORKER_SHUTDOWN_TIMEOUT_MS ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
      if (!(durationMs(service.stop_grace_period ?? '10s') > shutdown)) {
        problems.push(
          `worker: stop_grace_period must exceed WORKER_SHUTDOWN_TIMEOUT_MS (${shutdown} ms)`,
        );
      }
    }
  }

  const redis = (services.redis?.command ?? []).join(' ');
  if (!redis.includes('--appendonly yes') || !redis.includes('--maxmemory-policy noeviction')) {
    problems.push('redis: must run with --appendonly yes and --maxmemory-policy noeviction');
  }
  // The start command's Redis setting, which the tests' Redis shares.
  const listpack = /--hash-max-listpack-value (\d+)/.exec(
    read(join(ROOT, 'scripts/start.sh')),
  )?.[1];
  if (listpack === undefined || !redis.includes(`--hash-max-listpack-value ${listpack}`)) {
    problems.push(
      `redis: must run with --hash-max-listpack-value ${listpack ?? '?'}, as the start command's does`,
    );
  }
  for (const [name, service] of Object.entries(services)) {
    for (const volume of service.volumes ?? []) {
      const source = volume.split(':')[0] ?? '';
      if (source.startsWith('.') && !existsSync(resolve(mountBase, source))) {
        problems.push(`${name}: mounts ${source}, which does not exist`);
      }
    }
  }
  return problems;
}

describe('docker/compose.yaml', () => {
  const path = join(DOCKER, 'compose.yaml');
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'memfleet-compose-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const brokenCopy = (from: string, to: string): string => {
    const text = read(path);
    expect(text).to.include(from);
    const copy = join(dir, 'compose.yaml');
    writeFileSync(copy, text.replace(from, to));
    return copy;
  };

  it('matches the Compose Specification and the fleet rules', async () => {
    expect(await composeProblems(path)).to.deep.equal([]);
  });

  it('fails a copy that breaks the schema', async () => {
    const copy = brokenCopy('condition: service_completed_successfully', 'condition: finished');
    expect((await composeProblems(copy, DOCKER)).join('\n')).to.include('invalid-schema');
  });

  it('fails a copy that publishes a port on every interface', async () => {
    const copy = brokenCopy("'127.0.0.1:3000:3000'", "'3000:3000'");
    expect((await composeProblems(copy, DOCKER)).join('\n')).to.include(
      'no-unbound-port-interfaces',
    );
  });

  it('fails a copy whose Redis keeps the default hash-max-listpack-value', async () => {
    const copy = brokenCopy("- '8192'", "- '64'");
    expect((await composeProblems(copy, DOCKER)).join('\n')).to.include(
      'must run with --hash-max-listpack-value',
    );
  });

  it('fails a copy whose worker would be killed mid-drain or whose env is no valid config', async () => {
    const copy = brokenCopy('stop_grace_period: 40s', 'stop_grace_period: 20s');
    const text = read(copy).replace('LOG_LEVEL: ${LOG_LEVEL:-info}', 'LOG_LEVL: loud');
    writeFileSync(copy, text);
    const problems = (await composeProblems(copy, DOCKER)).join('\n');
    expect(problems).to.include('stop_grace_period must exceed');
    expect(problems).to.include('LOG_LEVL is not a documented memfleet setting');
  });
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Env };
  spec?: Record<string, unknown>;
  data?: Env;
  stringData?: Env;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Env };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
}

interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
  initContainers?: Container[];
  containers: Container[];
}

interface DeploymentSpec {
  replicas?: number;
  selector: { matchLabels: Env };
  template: { metadata: { labels: Env }; spec: PodSpec };
}

/** The schema each kind is checked against; a kind missing here fails the check. */
// Each model takes the parsed YAML as it is; validate() checks it against the schema.
const MODELS: Record<string, (o: never) => { validate(): void }> = {
  'v1/Namespace': (o) => new Namespace(o),
  'v1/ConfigMap': (o) => new ConfigMap(o),
  'v1/Secret': (o) => new Secret(o),
  'v1/Service': (o) => new Service(o),
  'apps/v1/Deployment': (o) => new Deployment(o),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o),
  'autoscaling/v2/HorizontalPodAutoscaler': (o) => new HorizontalPodAutoscaler(o),
  'keda.sh/v1alpha1/ScaledObject': (o) => new ScaledObject(o),
};

function loadManifests(dir: string): { file: string; object: K8sObject }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .sort()
    .flatMap((file) =>
      parseAllDocuments(read(join(dir, file))).map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message ?? ''}`);
        return { file, object: doc.toJS() as K8sObject };
      }),
    );
}

const matches = (selector: Env, labels: Env): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

function k8sProblems(dir: string): string[] {
  const problems: string[] = [];
  const all = loadManifests(dir);
  const id = (o: K8sObject): string => `${o.kind}/${o.metadata.name}`;

  for (const { file, object } of all) {
    const model = MODELS[`${object.apiVersion}/${object.kind}`];
    if (model === undefined) {
      problems.push(`${file}: ${object.apiVersion} ${object.kind} has no schema here`);
      continue;
    }
    try {
      model(object as never).validate();
    } catch (err: unknown) {
      problems.push(`${file}: ${id(object)}: ${(err as Error).message}`);
    }
  }

  const kustomization = parse(read(join(dir, 'kustomization.yaml'))) as { resources: string[] };
  const files = [...new Set(all.map((m) => m.file))];
  for (const file of files.filter((f) => f !== 'secret.example.yaml')) {
    if (!kustomization.resources.includes(file))
      problems.push(`kustomization.yaml: ${file} missing`);
  }
  if (kustomization.resources.includes('secret.example.yaml')) {
    problems.push('kustomization.yaml: must not apply the example Secret');
  }

  const objects = all.map((m) => m.object);
  const ofKind = (kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
  const deployments = ofKind('Deployment');
  const configMaps = new Map(ofKind('ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]));
  const secrets = new Map(ofKind('Secret').map((o) => [o.metadata.name, o.stringData ?? {}]));
  const podLabels = (d: K8sObject): Env =>
    (d.spec as unknown as DeploymentSpec).template.metadata.labels;
  const image = imageEnv(read(join(DOCKER, 'Dockerfile')));
  const scaled = new Set<string>();

  for (const d of deployments) {
    const spec = d.spec as unknown as DeploymentSpec;
    const pod = spec.template.spec;
    if (!matches(spec.selector.matchLabels, spec.template.metadata.labels)) {
      problems.push(`${id(d)}: selector does not match the pod labels`);
    }
    if (spec.replicas !== undefined) problems.push(`${id(d)}: replicas belongs to the autoscaler`);
    if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${id(d)}: must run as non-root`);
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      const where = `${id(d)} container ${c.name}`;
      if (c.image !== 'memfleet') problems.push(`${where}: image must be memfleet`);
      if (c.securityContext?.allowPrivilegeEscalation !== false) {
        problems.push(`${where}: must not allow privilege escalation`);
      }
      const env: Env = { ...image };
      for (const from of c.envFrom ?? []) {
        const name = from.configMapRef?.name ?? from.secretRef?.name ?? '';
        const source = from.configMapRef !== undefined ? configMaps.get(name) : secrets.get(name);
        if (source === undefined) problems.push(`${where}: envFrom ${name} is not defined here`);
        Object.assign(env, source);
      }
      for (const e of c.env ?? []) env[e.name] = e.value ?? '';
      // tsx fails to start when it cannot write its transform cache.
      if (c.securityContext?.readOnlyRootFilesystem === true && env.TSX_DISABLE_CACHE !== '1') {
        problems.push(`${where}: a read-only root filesystem needs TSX_DISABLE_CACHE=1`);
      }
      const [role] = c.args ?? [];
      if (role === 'migrate') {
        if (env.DATABASE_URL === undefined) problems.push(`${where}: migrate needs DATABASE_URL`);
        continue;
      }
      if (role === undefined || !isProcess(role)) {
        problems.push(`${where}: args must name api, worker or reader`);
        continue;
      }
      problems.push(...envProblems(where, env));
      const { portVar, defaultPort } = PROCESSES[role];
      const listens = Number(env[portVar] ?? defaultPort);
      const probes: [string, Probe | undefined, string][] = [
        ['readinessProbe', c.readinessProbe, '/readyz'],
        ['livenessProbe', c.livenessProbe, '/healthz'],
        ['startupProbe', c.startupProbe, '/healthz'],
      ];
      for (const [kind, probe, path] of probes) {
        const port = probe?.httpGet?.port;
        const number =
          typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;
        if (probe?.httpGet?.path !== path || number !== listens) {
          problems.push(`${where}: ${kind} must GET ${path} on ${portVar} (${listens})`);
        }
      }
      if (c.resources?.requests?.cpu === undefined) problems.push(`${where}: needs a CPU request`);
      if (role === 'worker') {
        const shutdown = Number(env.WORKER_SHUTDOWN_TIMEOUT_MS ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
        if (!((pod.terminationGracePeriodSeconds ?? 30) * 1000 > shutdown)) {
          problems.push(
            `${id(d)}: terminationGracePeriodSeconds must exceed WORKER_SHUTDOWN_TIMEOUT_MS (${shutdown} ms)`,
          );
        }
        const concurrency = Number(env.WORKER_CONCURRENCY ?? DEFAULT_WORKER_CONCURRENCY);
        for (const so of ofKind('ScaledObject')) {
          const threshold = (
            so.spec as { triggers: { metadata: { threshold?: string } }[] }
          ).triggers.map((t) => Number(t.metadata.threshold));
          if (threshold.some((t) => !(t > 0 && t <= concurrency))) {
            problems.push(
              `${id(so)}: threshold must be between 1 and WORKER_CONCURRENCY (${concurrency})`,
            );
          }
        }
      }
    }
  }

  const deploymentNamed = (name: string): K8sObject | undefined =>
    deployments.find((d) => d.metadata.name === name);
  for (const o of [...ofKind('Service'), ...ofKind('PodDisruptionBudget')]) {
    const spec = o.spec as { selector: Env | { matchLabels: Env } };
    const selector = 'matchLabels' in spec.selector ? spec.selector.matchLabels : spec.selector;
    const targets = deployments.filter((d) => matches(selector as Env, podLabels(d)));
    if (targets.length !== 1) problems.push(`${id(o)}: selects ${targets.length} Deployments`);
    if (o.kind === 'Service') {
      for (const p of (o.spec as { ports: { targetPort: string | number }[] }).ports) {
        const pod =
          targets[0] === undefined ? undefined : (targets[0].spec as unknown as DeploymentSpec);
        const named = pod?.template.spec.containers.some((c) =>
          c.ports?.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort),
        );
        if (named !== true)
          problems.push(`${id(o)}: targetPort ${p.targetPort} is no container port`);
      }
    }
  }
  for (const o of [...ofKind('HorizontalPodAutoscaler'), ...ofKind('ScaledObject')]) {
    const target = (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name;
    if (deploymentNamed(target) === undefined)
      problems.push(`${id(o)}: scales ${target}, not here`);
    if (scaled.has(target)) problems.push(`${id(o)}: ${target} has two autoscalers`);
    scaled.add(target);
  }
  for (const role of Object.keys(PROCESSES)) {
    if (!scaled.has(`memfleet-${role}`)) problems.push(`memfleet-${role} has no autoscaler`);
  }
  const exported = metricNamesExported();
  for (const so of ofKind('ScaledObject')) {
    for (const t of (so.spec as { triggers: { metadata: { query?: string } }[] }).triggers) {
      for (const m of (t.metadata.query ?? '').matchAll(/\bmemfleet_[a-z0-9_]+/g)) {
        if (!exported.has(m[0])) problems.push(`${id(so)}: ${m[0]} is not a memfleet metric`);
      }
    }
  }
  return problems;
}

describe('infra/k8s', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'memfleet-k8s-'));
    for (const f of readdirSync(K8S)) writeFileSync(join(dir, f), read(join(K8S, f)));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const edit = (file: string, from: string | RegExp, to: string): void => {
    const text = read(join(dir, file));
    const changed = text.replace(from, to);
    expect(changed, `${file} holds ${String(from)}`).to.not.equal(text);
    writeFileSync(join(dir, file), changed);
  };

  it('every object passes its schema (Kubernetes API, KEDA CRD) and the fleet rules', () => {
    expect(k8sProblems(K8S)).to.deep.equal([]);
  });

  it('fails a copy with objects the schemas refuse', () => {
    edit(
      'worker.yaml',
      'terminationGracePeriodSeconds: 40',
      "terminationGracePeriodSeconds: 'forty'",
    );
    edit('worker.yaml', 'scaleTargetRef:\n    name: memfleet-worker', 'scaleTargetRef: {}');
    edit('api.yaml', 'maxUnavailable: 1', 'maxUnavailable: [1]');
    const problems = k8sProblems(dir).join('\n');
    expect(problems).to.match(/Deployment\/memfleet-worker: .*terminationGracePeriodSeconds/);
    expect(problems).to.match(/ScaledObject\/memfleet-worker: .*name/);
    expect(problems).to.match(/PodDisruptionBudget\/memfleet-api: .*maxUnavailable/);
  });

  it('fails a copy: worker killed mid-drain, wrong probe port, unknown metric, tsx cache on', () => {
    edit('worker.yaml', 'terminationGracePeriodSeconds: 40', 'terminationGracePeriodSeconds: 20');
    edit('reader.yaml', /containerPort: 3001/, 'containerPort: 3000');
    edit('worker.yaml', 'memfleet_backend_auth_failing', 'memfleet_backend_auth_failed');
    edit('config.yaml', "WORKER_CONCURRENCY: '32'", "WORKER_CONCURRENCY: '16'");
    edit('config.yaml', 'LOG_LEVEL: info', "LOG_LEVEL: info\n  TSX_DISABLE_CACHE: '0'");
    const problems = k8sProblems(dir).join('\n');
    expect(problems).to.include('terminationGracePeriodSeconds must exceed');
    expect(problems).to.include('readinessProbe must GET /readyz on READER_PORT (3001)');
    expect(problems).to.include('memfleet_backend_auth_failed is not a memfleet metric');
    expect(problems).to.include('threshold must be between 1 and WORKER_CONCURRENCY (16)');
    expect(problems).to.include('a read-only root filesystem needs TSX_DISABLE_CACHE=1');
  });

  it('fails a copy whose environment is no valid memfleet config', () => {
    edit('config.yaml', 'MEMORY_BACKEND: postgres', 'MEMORY_BACKEND: zep');
    expect(k8sProblems(dir).join('\n')).to.include('ZEP_API_KEY: required when MEMORY_BACKEND=zep');
  });

  it('fails a copy whose secrets are no valid memfleet config', () => {
    edit(
      'secret.example.yaml',
      'MEMFLEET_ADMIN_KEY: change-me-admin-key-0001',
      'MEMFLEET_ADMIN_KEY: short',
    );
    expect(k8sProblems(dir).join('\n')).to.include(
      'MEMFLEET_ADMIN_KEY: must be at least 16 characters',
    );
  });
});
