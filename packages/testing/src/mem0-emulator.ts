import { createHash, randomUUID } from 'node:crypto';
import { toError } from '@memfleet/errors/to-error';
import {
  answerJson,
  decodeSegment,
  isObject,
  startEmulatorServer,
  statusText,
  Timers,
} from './emulator-server.ts';
import { writeStoreDump } from './store-dump.ts';
import type {
  Answer,
  Arrival,
  EmulatorApi,
  EmulatorListenOptions,
  Json,
} from './emulator-server.ts';

// The fault rules and request records are shared with the Zep emulator (emulator-server.ts).
// Paths are the full request path here (e.g. '/v3/memories/add/'), and a 'rate_limit' fault
// answers mem0-style JSON (see the README).
export type { FaultRule, RequestRecord } from './emulator-server.ts';

/** What an async (`infer` not false) add ends as; see {@link Mem0EmulatorOptions.outcome}. */
export type Mem0AddOutcome = 'succeeded' | 'failed' | 'empty';

/** Options of {@link startMem0Emulator}. */
export interface Mem0EmulatorOptions extends EmulatorListenOptions {
  /** Accepted API keys (`Authorization: Token <k>`, or `X-API-Key: <k>` on the OSS routes). Default `['mem0-emulator-key']`. */
  apiKeys?: string[];
  /**
   * How long an async add takes: its event is PENDING for the first half, RUNNING for the second,
   * then SUCCEEDED or FAILED. Default `0` (terminal on the next timer tick).
   */
  eventLagMs?: number;
  /**
   * Decides how each async add ends, from its request body (snake_case, as sent): `'succeeded'`
   * stores one memory per new message, `'empty'` ends SUCCEEDED with `results: []` and stores
   * nothing, `'failed'` ends FAILED with an `error` and stores nothing. A throw counts as
   * `'failed'` with the thrown message. Default: always `'succeeded'`.
   */
  outcome?: (payload: Readonly<Record<string, unknown>>) => Mem0AddOutcome;
  /**
   * False for an emulator a test fills with raw personal data on purpose (calling it directly, not
   * through memfleet): close() then writes no dump of its store for the PII scan. Default true:
   * when `MEMFLEET_TEST_LOG_DIR` is set, close() first writes what it stores to `mem0-<port>.dump`.
   */
  scan?: boolean;
}

/** The entity ids that scope a memory. */
export interface Mem0Scope {
  user_id?: string;
  agent_id?: string;
  app_id?: string;
  run_id?: string;
}

/** A memory as the emulator stores it. */
export interface StoredMemory extends Mem0Scope {
  id: string;
  memory: string;
  metadata?: Record<string, unknown>;
  /** Whether it came from an `infer` add (dedup never crosses the two kinds). */
  infer: boolean;
  created_at: string;
  updated_at: string;
}

/** An event of the platform API (`GET /v1/event/{id}/`). */
export interface StoredEvent {
  id: string;
  event_type: 'ADD' | 'DELETE';
  status: 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  /** The request body, as sent. */
  payload: Record<string, unknown>;
  results: { id: string; data: { memory: string }; event: 'ADD' }[];
  error: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
}

/** A running emulator of the mem0 platform API and of the self-hosted (OSS) REST server. */
export interface Mem0Emulator extends EmulatorApi {
  /** Base URL, e.g. 'http://127.0.0.1:41234': `MemoryClient`'s `host`, and the OSS server's base. */
  readonly url: string;
  /** Stored memories in insertion order, those matching every given entity id (all when omitted). */
  memories(filter?: Mem0Scope): StoredMemory[];
  /** Every event in creation order. */
  events(): StoredEvent[];
  /** Changes the lag of async adds made from now on. */
  setEventLagMs(ms: number): void;
}

const ENTITY_KEYS = ['user_id', 'agent_id', 'app_id', 'run_id'] as const;
type EntityKey = (typeof ENTITY_KEYS)[number];
/** The OSS server has no app_id. */
const OSS_ENTITY_KEYS = ['user_id', 'agent_id', 'run_id'] as const;
const ENTITY_TYPES: Record<string, EntityKey> = {
  user: 'user_id',
  agent: 'agent_id',
  app: 'app_id',
  run: 'run_id',
};
const ROLES = ['user', 'assistant', 'system'];
const ORG_ID = 'org_emulator';
const PROJECT_ID = 'proj_emulator';
const INVALID_KEY = 'Invalid API key. You can find your API key on https://app.mem0.ai.';
const OSS_AUTH_REQUIRED = 'Authentication required. Provide a Bearer token or X-API-Key header.';
const FAILED_ERROR = 'Memory extraction failed (emulated).';
const MAX_PAGE_SIZE = 200;
const JSON_TYPE = 'application/json';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const jsonAnswer = (status: number, value: unknown): Answer => answerJson(JSON_TYPE, status, value);

/** Thrown by the routes; answered with its status and body. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
  ) {
    super(JSON.stringify(body));
  }
}

/** The platform's validation error shape. */
const invalid = (message: string): ApiError =>
  new ApiError(400, { error: '400 Bad Request', details: { message } });
const platformError = (status: number, error: string): ApiError => new ApiError(status, { error });
/** FastAPI's shape, used by the OSS server. */
const ossError = (status: number, detail: string): ApiError => new ApiError(status, { detail });

function parseBody(text: string, fail: (message: string) => ApiError): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw fail('Invalid JSON body.');
  }
  if (!isObject(value)) throw fail('The body must be a JSON object.');
  return value;
}

const now = (): string => new Date().toISOString();

// ---- the data model ----

interface NewMemory {
  content: string;
  role: string;
}

/** One entity id from a body or query; undefined when absent. */
function entityValue(value: unknown, key: string, fail: (message: string) => ApiError) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw fail(`${key} must be a non-empty string.`);
  return value;
}

function scopeOf(
  source: (key: string) => unknown,
  keys: readonly EntityKey[],
  fail: (message: string) => ApiError,
): Mem0Scope {
  const scope: Mem0Scope = {};
  for (const key of keys) {
    const value = entityValue(source(key), key, fail);
    if (value !== undefined) scope[key] = value;
  }
  return scope;
}

const hasEntity = (scope: Mem0Scope): boolean => ENTITY_KEYS.some((k) => scope[k] !== undefined);

function sameScope(a: Mem0Scope, b: Mem0Scope): boolean {
  return ENTITY_KEYS.every((k) => a[k] === b[k]);
}

/** Whether the memory has every entity id of `filter`; `'*'` means "set to anything". */
function inScope(memory: Mem0Scope, filter: Mem0Scope): boolean {
  return ENTITY_KEYS.every((k) => {
    const want = filter[k];
    if (want === undefined) return true;
    return want === '*' ? memory[k] !== undefined : memory[k] === want;
  });
}

function checkMessages(raw: unknown, fail: (message: string) => ApiError): NewMemory[] {
  if (!Array.isArray(raw) || raw.length === 0) throw fail('messages must be a non-empty list.');
  const kept: NewMemory[] = [];
  raw.forEach((item: unknown, i) => {
    if (!isObject(item)) throw fail(`messages[${i}] must be an object.`);
    const { role, content } = item;
    if (typeof role !== 'string' || !ROLES.includes(role)) {
      throw fail(`messages[${i}].role must be one of ${ROLES.join(', ')}.`);
    }
    if (typeof content !== 'string') {
      // Multimodal content is skipped silently, as mem0 does with infer:false.
      if (isObject(content)) return;
      throw fail(`messages[${i}].content must be a string.`);
    }
    if (role !== 'system' && content.trim() !== '') kept.push({ content, role });
  });
  return kept;
}

function checkMetadata(value: unknown, fail: (message: string) => ApiError): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw fail('metadata must be an object.');
  return structuredClone(value);
}

function checkInfer(value: unknown, fail: (message: string) => ApiError): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value !== 'boolean') throw fail('infer must be a boolean.');
  return value;
}

/**
 * A deterministic stand-in for semantic search: 1 if the memory contains the whole query, else
 * the share of the query's words it contains (case-insensitive).
 */
function score(query: string, memory: string): number {
  const q = query.toLowerCase().trim();
  const text = memory.toLowerCase();
  if (q === '') return 0;
  if (text.includes(q)) return 1;
  const words = q.split(/\W+/).filter((w) => w !== '');
  if (words.length === 0) return 0;
  return words.filter((w) => text.includes(w)).length / words.length;
}

function nonNegativeNumber(value: unknown, key: string, fallback: number, fail: typeof invalid) {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw fail(`${key} must be a non-negative number.`);
  }
  return value;
}

function queryPositiveInt(query: URLSearchParams, key: string, fallback: number): number {
  const raw = query.get(key);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw platformError(400, `${key} must be a positive integer.`);
  }
  return Number(raw);
}

/**
 * A platform v3 `filters` object: entity ids (string or `'*'`), `metadata` (every key equal),
 * and `AND`/`OR` lists of such objects. Anything else is rejected rather than silently ignored.
 */
type MemoryFilter = (m: StoredMemory) => boolean;

function compileFilters(raw: unknown): { test: MemoryFilter; hasEntity: boolean } {
  if (!isObject(raw) || Object.keys(raw).length === 0) {
    throw platformError(400, 'Filters are required and cannot be empty.');
  }
  const tests: MemoryFilter[] = [];
  let entity = false;
  for (const [key, value] of Object.entries(raw)) {
    if ((ENTITY_KEYS as readonly string[]).includes(key)) {
      const want = entityValue(value, key, invalid);
      if (want === undefined) continue;
      entity = true;
      const k = key as EntityKey;
      tests.push((m) => (want === '*' ? m[k] !== undefined : m[k] === want));
    } else if (key === 'metadata') {
      if (!isObject(value)) throw invalid('filters.metadata must be an object.');
      const wanted = Object.entries(value);
      tests.push((m) => wanted.every(([k, v]) => m.metadata?.[k] === v));
    } else if (key === 'AND' || key === 'OR') {
      if (!Array.isArray(value) || value.length === 0) {
        throw invalid(`filters.${key} must be a non-empty list.`);
      }
      const parts = value.map(compileFilters);
      // An OR only scopes the query if every branch does.
      if (key === 'AND' ? parts.some((p) => p.hasEntity) : parts.every((p) => p.hasEntity)) {
        entity = true;
      }
      tests.push(
        key === 'AND' ? (m) => parts.every((p) => p.test(m)) : (m) => parts.some((p) => p.test(m)),
      );
    } else {
      throw invalid(`The emulator does not support the filter '${key}'.`);
    }
  }
  return { test: (m) => tests.every((t) => t(m)), hasEntity: entity };
}

function scopedFilters(body: Json): MemoryFilter {
  const misplaced = ENTITY_KEYS.filter((k) => body[k] !== undefined);
  if (misplaced.length > 0) {
    throw invalid(
      `Top-level entity parameters [${misplaced.join(', ')}] are not supported; use filters.`,
    );
  }
  const filters = compileFilters(body.filters);
  if (!filters.hasEntity) {
    throw invalid('filters must contain at least one of user_id, agent_id, app_id, run_id.');
  }
  return filters.test;
}

/** The emulated project: memories and events, and the routes over them. */
class Mem0Store {
  readonly memories: StoredMemory[] = [];
  readonly events = new Map<string, StoredEvent>();

  constructor(
    private readonly timers: Timers,
    public eventLagMs: number,
    private readonly outcome: Mem0EmulatorOptions['outcome'],
  ) {}

  /**
   * Stores one memory per message, skipping content that an earlier memory of the same scope and
   * kind (infer or not) already holds, and repeats within the batch.
   */
  private store(
    items: NewMemory[],
    scope: Mem0Scope,
    metadata: Json | undefined,
    infer: boolean,
    dedup: boolean,
    createdAt: string,
  ): StoredMemory[] {
    const added: StoredMemory[] = [];
    for (const { content } of items) {
      const duplicate = (m: StoredMemory) =>
        m.infer === infer && m.memory === content && sameScope(m, scope);
      if (dedup && (this.memories.some(duplicate) || added.some(duplicate))) continue;
      const memory: StoredMemory = {
        id: randomUUID(),
        memory: content,
        ...scope,
        ...(metadata === undefined ? {} : { metadata: structuredClone(metadata) }),
        infer,
        created_at: createdAt,
        updated_at: createdAt,
      };
      added.push(memory);
    }
    this.memories.push(...added);
    return added;
  }

  private newEvent(type: StoredEvent['event_type'], payload: Json): StoredEvent {
    const at = now();
    const event: StoredEvent = {
      id: randomUUID(),
      event_type: type,
      status: 'PENDING',
      payload: structuredClone(payload),
      results: [],
      error: null,
      created_at: at,
      updated_at: at,
      started_at: null,
      completed_at: null,
    };
    this.events.set(event.id, event);
    return event;
  }

  private static finish(event: StoredEvent, status: 'SUCCEEDED' | 'FAILED'): void {
    const at = now();
    event.status = status;
    event.started_at ??= at;
    event.updated_at = at;
    event.completed_at = at;
  }

  private static results(added: StoredMemory[]): StoredEvent['results'] {
    return added.map((m) => ({ id: m.id, data: { memory: m.memory }, event: 'ADD' as const }));
  }

  private get(id: string | undefined): StoredMemory {
    if (id === undefined || !UUID_RE.test(id)) {
      throw platformError(400, 'memory_id should be a valid UUID');
    }
    const memory = this.memories.find((m) => m.id === id);
    if (!memory) throw platformError(404, 'Memory not found!');
    return memory;
  }

  private remove(test: (m: StoredMemory) => boolean): number {
    let removed = 0;
    for (let i = this.memories.length - 1; i >= 0; i -= 1) {
      const memory = this.memories[i];
      if (memory !== undefined && test(memory)) {
        this.memories.splice(i, 1);
        removed += 1;
      }
    }
    return removed;
  }

  private update(memory: StoredMemory, body: Json, fail: (message: string) => ApiError): void {
    const { text } = body;
    const metadata = checkMetadata(body.metadata, fail);
    if (text !== undefined && (typeof text !== 'string' || text === '')) {
      throw fail('text must be a non-empty string.');
    }
    if (text === undefined && metadata === undefined) {
      throw fail('At least one of text or metadata is required.');
    }
    if (text !== undefined) memory.memory = text;
    if (metadata !== undefined) memory.metadata = metadata;
    memory.updated_at = now();
  }

  // ---- platform ----

  /** Routes a platform request; `segments` are the decoded path segments. */
  platform(method: string, segments: string[], query: URLSearchParams, body: () => Json): Answer {
    switch (`${method} ${segments.join('/')}`) {
      case 'GET v1/ping':
        return jsonAnswer(200, { status: 'ok', org_id: ORG_ID, project_id: PROJECT_ID });
      case 'POST v3/memories/add':
        return this.platformAdd(body());
      case 'POST v3/memories':
        return this.getAll(body(), query);
      case 'POST v3/memories/search':
        return this.search(body(), false);
      case 'DELETE v1/memories':
        return this.deleteAll(query);
      case 'GET v1/entities':
        return jsonAnswer(200, this.entities());
    }
    const [version, collection, id, name] = segments;
    const route = `${method} ${version}/${collection}/:id${name === undefined ? '' : '/:name'}`;
    if (segments.length > 4 || id === undefined) throw new ApiError(404, { detail: 'Not found.' });
    switch (route) {
      case 'GET v1/event/:id': {
        const event = this.events.get(id);
        if (!event) {
          throw platformError(404, "Event not found or you don't have permission to access it.");
        }
        return jsonAnswer(200, eventJson(event));
      }
      case 'GET v1/memories/:id':
        return jsonAnswer(200, { ...platformMemoryJson(this.get(id)), lifecycle_state: 'active' });
      case 'PUT v1/memories/:id': {
        const memory = this.get(id);
        this.update(memory, body(), invalid);
        return jsonAnswer(200, platformMemoryJson(memory));
      }
      case 'DELETE v1/memories/:id': {
        const memory = this.get(id);
        this.remove((m) => m === memory);
        return jsonAnswer(200, { message: 'Memory deleted successfully!' });
      }
      case 'DELETE v2/entities/:id/:name': {
        const key = ENTITY_TYPES[id];
        if (key === undefined || name === undefined) break;
        this.remove((m) => m[key] === name);
        return jsonAnswer(200, { message: 'Entity deleted successfully!' });
      }
    }
    throw new ApiError(404, { detail: 'Not found.' });
  }

  /** Deletes at once, though mem0 answers as if it were queued (and it is, there). */
  private deleteAll(query: URLSearchParams): Answer {
    const scope = scopeOf((k) => query.get(k), ENTITY_KEYS, invalid);
    if (!hasEntity(scope)) {
      throw invalid('At least one filter (user_id, agent_id, app_id, run_id) is required.');
    }
    this.remove((m) => inScope(m, scope));
    const event = this.newEvent('DELETE', { ...scope });
    Mem0Store.finish(event, 'SUCCEEDED');
    return jsonAnswer(200, {
      message: 'Delete in progress. This may take some time.',
      event_id: event.id,
    });
  }

  private platformAdd(body: Json): Answer {
    const items = checkMessages(body.messages, invalid);
    const scope = scopeOf((k) => body[k], ENTITY_KEYS, invalid);
    if (!hasEntity(scope)) {
      throw invalid('At least one of user_id, agent_id, app_id or run_id is required.');
    }
    const metadata = checkMetadata(body.metadata, invalid);
    const infer = checkInfer(body.infer, invalid);
    const { timestamp } = body;
    if (timestamp !== undefined && timestamp !== null && typeof timestamp !== 'number') {
      throw invalid('timestamp must be a unix time in seconds.');
    }
    const createdAt = typeof timestamp === 'number' ? new Date(timestamp * 1000) : undefined;
    const at = () => createdAt?.toISOString() ?? now();
    const event = this.newEvent('ADD', body);
    if (!infer) {
      const added = this.store(items, scope, metadata, false, true, at());
      event.results = Mem0Store.results(added);
      Mem0Store.finish(event, 'SUCCEEDED');
      return jsonAnswer(200, {
        message: 'Memories stored successfully',
        status: 'SUCCEEDED',
        event_id: event.id,
        results: event.results,
      });
    }
    const complete = () => {
      let outcome: Mem0AddOutcome;
      try {
        outcome = this.outcome?.(structuredClone(body)) ?? 'succeeded';
      } catch (err: unknown) {
        event.error = toError(err).message;
        Mem0Store.finish(event, 'FAILED');
        return;
      }
      if (outcome === 'failed') {
        event.error = FAILED_ERROR;
        Mem0Store.finish(event, 'FAILED');
        return;
      }
      if (outcome === 'succeeded') {
        event.results = Mem0Store.results(this.store(items, scope, metadata, true, true, at()));
      }
      Mem0Store.finish(event, 'SUCCEEDED');
    };
    const lag = this.eventLagMs;
    if (lag > 0) {
      void this.timers.wait(lag / 2).then((ran) => {
        if (!ran) return;
        event.status = 'RUNNING';
        event.started_at = now();
        event.updated_at = event.started_at;
      });
    }
    void this.timers.wait(lag).then((ran) => {
      if (ran) complete();
    });
    return jsonAnswer(200, { event_id: event.id, status: 'PENDING' });
  }

  private getAll(body: Json, query: URLSearchParams): Answer {
    const test = scopedFilters(body);
    const page = queryPositiveInt(query, 'page', 1);
    const pageSize = queryPositiveInt(query, 'page_size', 100);
    if (pageSize > MAX_PAGE_SIZE) {
      throw invalid(`page_size must be at most ${MAX_PAGE_SIZE}.`);
    }
    const all = this.memories.filter(test);
    const link = (p: number) => `/v3/memories/?page=${p}&page_size=${pageSize}`;
    return jsonAnswer(200, {
      count: all.length,
      next: page * pageSize < all.length ? link(page + 1) : null,
      previous: page > 1 ? link(page - 1) : null,
      results: all.slice((page - 1) * pageSize, page * pageSize).map(platformMemoryJson),
    });
  }

  /** Platform v3 search (`oss` false) or the OSS server's `POST /search`. */
  private search(body: Json, oss: boolean): Answer {
    const fail = oss ? (m: string) => ossError(400, m) : invalid;
    const { query } = body;
    if (typeof query !== 'string') throw fail('query must be a string.');
    let test: MemoryFilter;
    if (oss) {
      // Top-level ids are deprecated there but merged into the filters.
      const scope = scopeOf((k) => body[k], OSS_ENTITY_KEYS, fail);
      const filters = isObject(body.filters) ? body.filters : {};
      let merged: ReturnType<typeof compileFilters> | undefined;
      try {
        merged = compileFilters({ ...filters, ...scope });
      } catch (err: unknown) {
        if (!(err instanceof ApiError)) throw err;
      }
      if (!merged?.hasEntity) {
        throw fail('At least one of user_id, agent_id or run_id is required.');
      }
      test = merged.test;
    } else {
      test = scopedFilters(body);
    }
    const topK = nonNegativeNumber(body.top_k, 'top_k', 10, fail);
    const threshold = nonNegativeNumber(body.threshold, 'threshold', 0.1, fail);
    const scored = this.memories
      .filter(test)
      .map((m) => ({ m, score: score(query, m.memory) }))
      .filter((s) => s.score >= threshold)
      .sort((a, b) => b.score - a.score)
      .slice(0, Math.floor(topK));
    const json = oss ? ossMemoryJson : searchMemoryJson;
    return jsonAnswer(200, { results: scored.map((s) => ({ ...json(s.m), score: s.score })) });
  }

  private entities(): Json {
    const seen = new Map<string, Json>();
    for (const m of this.memories) {
      for (const [type, key] of Object.entries(ENTITY_TYPES)) {
        const name = m[key];
        if (name === undefined) continue;
        const entity = seen.get(`${type}\0${name}`) ?? {
          id: randomUUID(),
          name,
          type,
          created_at: m.created_at,
          updated_at: m.updated_at,
          total_memories: 0,
          owner: ORG_ID,
          metadata: null,
        };
        entity.total_memories = Number(entity.total_memories) + 1;
        seen.set(`${type}\0${name}`, entity);
      }
    }
    const results = [...seen.values()];
    return { count: results.length, next: null, previous: null, results };
  }

  // ---- OSS server ----

  /** Routes a request of the self-hosted server (no trailing slashes, no version prefix). */
  oss(method: string, segments: string[], query: URLSearchParams, body: () => Json): Answer {
    const fail = (message: string) => ossError(400, message);
    const [collection, id] = segments;
    if (collection === 'search' && segments.length === 1 && method === 'POST') {
      return this.search(body(), true);
    }
    if (collection !== 'memories' || segments.length > 2) {
      throw ossError(404, 'Not Found');
    }
    const find = () => this.memories.find((m) => m.id === id);
    switch (`${method} ${id === undefined ? '' : ':id'}`) {
      case 'POST ':
        return this.ossAdd(body());
      case 'GET ': {
        const scope = scopeOf((k) => query.get(k), OSS_ENTITY_KEYS, fail);
        if (!hasEntity(scope)) throw fail('At least one identifier is required.');
        const found = this.memories.filter((m) => inScope(m, scope)).map(ossMemoryJson);
        return jsonAnswer(200, { results: found });
      }
      case 'DELETE ': {
        const scope = scopeOf((k) => query.get(k), OSS_ENTITY_KEYS, fail);
        if (!hasEntity(scope)) throw fail('At least one identifier is required.');
        this.remove((m) => inScope(m, scope));
        return jsonAnswer(200, { message: 'All relevant memories deleted' });
      }
      case 'GET :id': {
        const memory = find();
        return jsonAnswer(200, memory === undefined ? null : ossMemoryJson(memory));
      }
      case 'PUT :id': {
        const memory = find();
        if (memory === undefined) throw ossError(404, `Memory with id ${id} not found`);
        this.update(memory, body(), fail);
        return jsonAnswer(200, { message: 'Memory updated successfully!' });
      }
      case 'DELETE :id': {
        const memory = find();
        if (memory === undefined) throw ossError(404, `Memory with id ${id} not found`);
        this.remove((m) => m === memory);
        return jsonAnswer(200, { message: 'Memory deleted successfully' });
      }
    }
    throw ossError(405, 'Method Not Allowed');
  }

  private ossAdd(body: Json): Answer {
    const fail = (message: string) => ossError(422, message);
    const items = checkMessages(body.messages, fail);
    const scope = scopeOf((k) => body[k], OSS_ENTITY_KEYS, fail);
    if (!hasEntity(scope)) {
      throw ossError(400, 'At least one identifier (user_id, agent_id, run_id) is required.');
    }
    const metadata = checkMetadata(body.metadata, fail);
    const infer = checkInfer(body.infer, fail);
    // OSS dedups extracted facts by hash; infer:false inserts every message.
    const added = this.store(items, scope, metadata, infer, infer, now());
    const roles = new Map(items.map((item) => [item.content, item.role]));
    return jsonAnswer(200, {
      results: added.map((m) => ({
        id: m.id,
        memory: m.memory,
        event: 'ADD',
        ...(infer ? {} : { role: roles.get(m.memory) }),
      })),
    });
  }
}

/** A memory as `GET /v1/memories/{id}/` and getAll show it: the run id is `session_id` there. */
function platformMemoryJson(m: StoredMemory): Json {
  return {
    id: m.id,
    memory: m.memory,
    user_id: m.user_id ?? null,
    agent_id: m.agent_id ?? null,
    app_id: m.app_id ?? null,
    session_id: m.run_id ?? null,
    metadata: m.metadata ?? null,
    categories: [],
    structured_attributes: null,
    expiration_date: null,
    created_at: m.created_at,
    updated_at: m.updated_at,
  };
}

/** A memory as v3 search shows it: `run_id`, not `session_id`. */
function searchMemoryJson(m: StoredMemory): Json {
  const { session_id, structured_attributes: _, ...rest } = platformMemoryJson(m);
  return { ...rest, run_id: session_id };
}

function ossMemoryJson(m: StoredMemory): Json {
  return {
    id: m.id,
    memory: m.memory,
    hash: createHash('md5').update(m.memory).digest('hex'),
    metadata: m.metadata ?? null,
    created_at: m.created_at,
    updated_at: m.updated_at,
    ...(m.user_id === undefined ? {} : { user_id: m.user_id }),
    ...(m.agent_id === undefined ? {} : { agent_id: m.agent_id }),
    ...(m.run_id === undefined ? {} : { run_id: m.run_id }),
  };
}

function eventJson(e: StoredEvent): Json {
  const latency =
    e.completed_at === null ? null : Date.parse(e.completed_at) - Date.parse(e.created_at);
  return { ...structuredClone(e), metadata: null, latency, graph_status: null };
}

function copyMemory(m: StoredMemory): StoredMemory {
  return structuredClone(m);
}

// ---- faults ----

/** A throttled answer in Django REST framework's words (inferred; mem0 publishes no limits). */
function rateLimitAnswer(retryAfterS: number): Answer {
  const answer = jsonAnswer(429, {
    detail: `Request was throttled. Expected available in ${retryAfterS} seconds.`,
  });
  answer.headers = {
    ...answer.headers,
    'retry-after': String(retryAfterS),
    'x-ratelimit-limit': '60',
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + retryAfterS),
  };
  return answer;
}

// ---- the server ----

function checkOptions(options: Mem0EmulatorOptions): number {
  const lag = options.eventLagMs ?? 0;
  if (!Number.isFinite(lag) || lag < 0) {
    throw new Error(`startMem0Emulator: eventLagMs must be >= 0, got ${lag}`);
  }
  return lag;
}

/** Platform routes live under a version prefix; everything else is the OSS server's. */
const isPlatformPath = (segments: string[]): boolean => /^v\d+$/.test(segments[0] ?? '');

/**
 * Starts a local emulator of the mem0 platform API (as `MemoryClient` of `mem0ai` 3.3.1 calls it:
 * async adds with events, `infer:false` sync adds, getAll, search, get/update/delete, deleteAll
 * and entity deletes) and of the self-hosted OSS REST server (`/memories`, `/search`) on one port,
 * with scripted faults (error statuses before or after the write is stored, 429s, latency,
 * dropped connections, hooks) and a configurable event lag and outcome. Plain `node:http`, so
 * sockets can be destroyed and answers held back. See the package README for the routes.
 */
export async function startMem0Emulator(options: Mem0EmulatorOptions = {}): Promise<Mem0Emulator> {
  const eventLagMs = checkOptions(options);
  const timers = new Timers();
  const store = new Mem0Store(timers, eventLagMs, options.outcome);

  /** What a request gets when no fault intervenes: auth, then the route. */
  const perform = ({ method, url, headers, hasApiKey }: Arrival, text: string): Answer => {
    const { pathname, searchParams: query } = url;
    const segments = pathname
      .split('/')
      .filter((s) => s !== '')
      .map(decodeSegment);
    const platform = isPlatformPath(segments);
    const fail = platform ? invalid : (message: string) => ossError(400, message);
    try {
      if (platform) {
        const key = /^Token (.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim();
        if (key === undefined || !hasApiKey(key)) throw new ApiError(401, { detail: INVALID_KEY });
        // The platform's paths all end with a slash; the OSS server's never do.
        if (!pathname.endsWith('/')) throw new ApiError(404, { detail: 'Not found.' });
        return store.platform(method, segments, query, () => parseBody(text, fail));
      }
      const header = headers['x-api-key'];
      const key = Array.isArray(header) ? header[0] : header;
      if (key === undefined || key === '') throw ossError(401, OSS_AUTH_REQUIRED);
      if (!hasApiKey(key)) throw ossError(401, 'Invalid API key.');
      if (pathname.endsWith('/') && pathname !== '/') throw ossError(404, 'Not Found');
      return store.oss(method, segments, query, () => parseBody(text, fail));
    } catch (err: unknown) {
      if (err instanceof ApiError) {
        const answer = jsonAnswer(err.status, err.body);
        if (err.status === 401 && !platform) answer.headers['www-authenticate'] = 'Bearer';
        return answer;
      }
      return jsonAnswer(500, { detail: `emulator error: ${toError(err).message}` });
    }
  };

  const server = await startEmulatorServer(options, {
    name: 'startMem0Emulator',
    defaultApiKey: 'mem0-emulator-key',
    jsonType: JSON_TYPE,
    timers,
    accept: (arrival) => ({
      path: decodeSegment(arrival.url.pathname),
      perform: (text) => perform(arrival, text),
    }),
    statusFaultBody: (status) => ({ detail: statusText(status) }),
    errorBody: (detail) => ({ detail }),
    rateLimitAnswer,
  });

  return {
    url: server.origin,
    ...server.api,
    close: async () => {
      if (options.scan !== false) {
        await writeStoreDump(`mem0-${String(server.api.port)}`, [
          ...store.memories.map((memory) => ({ memory })),
          ...[...store.events.values()].map((event) => ({ event })),
        ]);
      }
      await server.api.close();
    },
    memories: (filter = {}) => store.memories.filter((m) => inScope(m, filter)).map(copyMemory),
    events: () => [...store.events.values()].map((e) => structuredClone(e)),
    setEventLagMs: (ms) => {
      store.eventLagMs = checkOptions({ eventLagMs: ms });
    },
  };
}
