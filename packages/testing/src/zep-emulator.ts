import { randomUUID } from 'node:crypto';
import { toError } from '@memfleet/errors/to-error';
import {
  answerJson,
  decodeSegment,
  isObject,
  startEmulatorServer,
  statusText,
  TEXT_TYPE,
  Timers,
} from './emulator-server.ts';
import { writeStoreDump } from './store-dump.ts';
import type {
  Accepted,
  Answer,
  Arrival,
  EmulatorApi,
  EmulatorListenOptions,
  Json,
} from './emulator-server.ts';

// The fault rules and request records are shared by the emulators; paths are below /api/v2 here.
export type { FaultRule, RequestRecord } from './emulator-server.ts';

/** Options of {@link startZepEmulator}. */
export interface ZepEmulatorOptions extends EmulatorListenOptions {
  /** Accepted API keys (`Authorization: Api-Key <k>`). Default `['zep-emulator-key']`. */
  apiKeys?: string[];
  /** Most messages one `POST /threads/:id/messages` may carry. Default `30`. */
  maxMessagesPerCall?: number;
  /** Longest message content, counted in code points. Default `2500` (Zep's free plan). */
  maxContentChars?: number;
  /** Most keys a message's metadata may have. Default `10`. */
  maxMetadataKeys?: number;
  /**
   * Messages flip to `processed: true` this long after they are stored; context uses only
   * processed ones. Default `0` (processed on the next tick).
   */
  processingLagMs?: number;
  /**
   * Token bucket: requests per minute over all routes (a burst of this many, refilled evenly over
   * the minute); `undefined` = unlimited. Over the limit → 429 like Zep's. Default `undefined`.
   */
  rateLimitPerMinute?: number;
  /**
   * False for an emulator a test fills with raw personal data on purpose (calling it directly, not
   * through memfleet): close() then writes no dump of its store for the PII scan. Default true:
   * when `MEMFLEET_TEST_LOG_DIR` is set, close() first writes what it stores to `zep-<port>.dump`.
   */
  scan?: boolean;
}

/** A message as the emulator stores it. */
export interface StoredMessage {
  uuid: string;
  role: string;
  name?: string;
  content: string;
  created_at: string;
  metadata?: Record<string, unknown>;
  processed: boolean;
}

/** A running emulator of the Zep Cloud v3 HTTP API. */
export interface ZepEmulator extends EmulatorApi {
  /** Base URL for the SDK, e.g. 'http://127.0.0.1:41234/api/v2'. */
  readonly url: string;
  /** A thread's stored messages in insertion order ([] if unknown thread). */
  threadMessages(threadId: string): StoredMessage[];
  threadIds(): string[];
  userIds(): string[];
  /** The owner user id of a thread, or undefined. */
  threadOwner(threadId: string): string | undefined;
}

const API_PREFIX = '/api/v2';
const ROLES = ['norole', 'system', 'assistant', 'user', 'function', 'tool'] as const;
const GRAPH_DATA_TYPES = ['text', 'json', 'message', 'fact_triple'] as const;
const USER_STRING_FIELDS = ['email', 'first_name', 'last_name', 'time_zone'] as const;
const MAX_THREAD_ID_CHARS = 500;
const MAX_GRAPH_DATA_CHARS = 10_000;
const RATE_LIMIT_BODY = 'Rate limit exceeded for FREE plan';
/** X-RateLimit-Limit of a 'rate_limit' fault when there is no token bucket: Zep's free-plan penalty mode. */
const FREE_PLAN_PENALTY_RPM = 5;
const JSON_TYPE = 'application/json; charset=utf-8';

const jsonAnswer = (status: number, value: unknown): Answer => answerJson(JSON_TYPE, status, value);

/** Thrown by the routes; answered as `{"message": ...}` with its status. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const badRequest = (message: string): ApiError => new ApiError(400, message);
const notFound = (): ApiError => new ApiError(404, 'not found');

// ---- small validators ----

function isScalar(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number';
}

/** Zep counts characters as runes (code points), not UTF-16 units. */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** Whether `text` has more than `max` code points (never more than its UTF-16 length). */
function overChars(text: string, max: number): boolean {
  return text.length > max && codePoints(text) > max;
}

function isTimestamp(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value));
}

function optionalString(body: Json, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`bad request: ${key} must be a string`);
  return value;
}

function optionalBoolean(body: Json, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw badRequest(`bad request: ${key} must be a boolean`);
  return value;
}

function optionalTimestamp(body: Json, key: string, where = key): string | undefined {
  const value = optionalString(body, key);
  if (value !== undefined && !isTimestamp(value)) {
    throw badRequest(`bad request: ${where} must be an RFC3339 timestamp`);
  }
  return value;
}

function requiredString(body: Json, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '')
    throw badRequest(`bad request: ${key} is required`);
  return value;
}

function checkRole(value: unknown, where: string): string {
  if (typeof value !== 'string' || !(ROLES as readonly string[]).includes(value)) {
    throw badRequest(`bad request: ${where} must be one of ${ROLES.join(', ')}`);
  }
  return value;
}

function parseBody(text: string): Json {
  if (text.trim() === '') throw badRequest('bad request: a JSON body is required');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('bad request: invalid JSON body');
  }
  if (!isObject(value)) throw badRequest('bad request: the body must be a JSON object');
  return value;
}

/** An optional positive integer query parameter. */
function queryInt(query: URLSearchParams, key: string): number | undefined {
  const raw = query.get(key);
  if (raw === null || raw === '') return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw badRequest(`bad request: ${key} must be a positive integer`);
  }
  return Number(raw);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

// ---- rate limit ----

/** Requests per minute as a bucket of `limit` tokens, refilled continuously over the minute. */
class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly limit: number,
    now: number,
  ) {
    this.tokens = limit;
    this.last = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.limit, this.tokens + ((now - this.last) * this.limit) / 60_000);
    this.last = now;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whole seconds until a token is back. */
  retryAfterS(now: number): number {
    this.refill(now);
    return Math.max(1, Math.ceil(((1 - this.tokens) * 60) / this.limit));
  }

  /** The X-RateLimit-* headers; Reset is when the bucket is full again, in unix seconds. */
  headers(now: number): Record<string, string> {
    this.refill(now);
    const fullAt = now + ((this.limit - this.tokens) * 60_000) / this.limit;
    return {
      'x-ratelimit-limit': String(this.limit),
      'x-ratelimit-remaining': String(Math.floor(this.tokens)),
      'x-ratelimit-reset': String(Math.ceil(fullAt / 1000)),
      'x-ratelimit-increment': '1',
    };
  }
}

// ---- the v3 data model and routes ----

interface Limits {
  maxMessagesPerCall: number;
  maxContentChars: number;
  maxMetadataKeys: number;
  processingLagMs: number;
}

interface UserRecord {
  uuid: string;
  id: number;
  userId: string;
  graphUuid: string;
  /** email, first_name, last_name, time_zone, metadata, disable_default_ontology as on the wire. */
  fields: Json;
  createdAt: string;
  updatedAt: string;
}

interface ThreadRecord {
  uuid: string;
  threadId: string;
  userId: string;
  createdAt: string;
  messages: MessageRecord[];
}

/** Something the "graph" absorbs once processed: a message or a graph episode. */
interface Processable {
  processed: boolean;
  /** Global storage order, so a user's context lists facts across threads deterministically. */
  seq: number;
}

interface MessageRecord extends StoredMessage, Processable {
  /** False for roles named in `ignore_roles`: kept in the history, left out of the graph. */
  inGraph: boolean;
}

interface EpisodeRecord extends Processable {
  uuid: string;
  userId?: string;
  graphId?: string;
  type: string;
  data: string;
  createdAt: string;
  sourceDescription?: string;
  metadata?: Json;
  taskId: string;
}

interface TaskRecord {
  taskId: string;
  type: string;
  createdAt: string;
  items: Processable[];
}

const now = (): string => new Date().toISOString();

/** The emulated project: users, threads, messages, episodes and tasks, and the routes over them. */
class ZepProject {
  private readonly projectUuid = randomUUID();
  readonly users = new Map<string, UserRecord>();
  readonly threads = new Map<string, ThreadRecord>();
  /**
   * Messages by uuid, built on the first request that looks one up (`PATCH /messages/:uuid`) and
   * kept up to date from then on: a memfleet drain never makes such a request, and a map of every
   * message stored cost a tenth of the emulator's CPU under a write load.
   */
  private messageIndex: Map<string, MessageRecord> | undefined;
  private episodes: EpisodeRecord[] = [];
  private readonly tasks = new Map<string, TaskRecord>();
  private nextSeq = 1;
  private nextUserId = 1;

  /** Everything stored, one item per user, thread (with its messages) and graph episode. */
  dumpItems(): unknown[] {
    return [
      ...[...this.users.values()].map((user) => ({ user })),
      ...[...this.threads.values()].map((thread) => ({ thread })),
      ...this.episodes.map((episode) => ({ episode })),
    ];
  }

  constructor(
    private readonly limits: Limits,
    private readonly timers: Timers,
  ) {}

  /** Answers one authorized request; `segments` are the decoded path segments below /api/v2. */
  answer(method: string, segments: string[], query: URLSearchParams, text: string): Answer {
    try {
      return this.route(method, segments, query, () => parseBody(text));
    } catch (err: unknown) {
      if (err instanceof ApiError) return jsonAnswer(err.status, { message: err.message });
      return jsonAnswer(500, { message: `emulator error: ${toError(err).message}` });
    }
  }

  private route(
    method: string,
    segments: string[],
    query: URLSearchParams,
    body: () => Json,
  ): Answer {
    if (segments.length > 3) throw notFound();
    const [collection = '', id, sub] = segments;
    const pattern = [collection, id === undefined ? undefined : ':id', sub].filter(Boolean);
    switch (`${method} ${pattern.join('/')}`) {
      case 'POST users':
        return jsonAnswer(201, this.userJson(this.createUser(body())));
      case 'GET users/:id':
        return jsonAnswer(200, this.userJson(this.user(id)));
      case 'PATCH users/:id':
        return jsonAnswer(200, this.userJson(this.updateUser(this.user(id), body())));
      case 'DELETE users/:id':
        this.deleteUser(this.user(id));
        return jsonAnswer(200, { message: 'OK' });
      case 'GET users/:id/threads': {
        const { userId } = this.user(id);
        const owned = [...this.threads.values()].filter((t) => t.userId === userId);
        return jsonAnswer(
          200,
          owned.map((t) => this.threadJson(t)),
        );
      }
      case 'POST threads':
        return jsonAnswer(201, this.threadJson(this.createThread(body())));
      case 'DELETE threads/:id':
        this.deleteThread(this.thread(id));
        return jsonAnswer(200, { message: 'OK' });
      case 'POST threads/:id/messages':
        return jsonAnswer(200, this.addMessages(this.thread(id), body()));
      case 'GET threads/:id/messages':
        return jsonAnswer(200, this.listMessages(this.thread(id), query));
      case 'GET threads/:id/context':
        return jsonAnswer(200, { context: this.contextFor(this.thread(id).userId) });
      case 'PATCH messages/:id':
        return jsonAnswer(200, this.updateMessage(id, body()));
      case 'GET tasks/:id': {
        const task = this.tasks.get(id ?? '');
        if (!task) throw notFound();
        return jsonAnswer(200, taskJson(task));
      }
      case 'POST graph':
        return jsonAnswer(202, episodeJson(this.addGraphData(body())));
      default:
        throw notFound();
    }
  }

  private user(userId: string | undefined): UserRecord {
    const user = this.users.get(userId ?? '');
    if (!user) throw notFound();
    return user;
  }

  private thread(threadId: string | undefined): ThreadRecord {
    const thread = this.threads.get(threadId ?? '');
    if (!thread) throw notFound();
    return thread;
  }

  private storeProcessable(type: string, items: Processable[]): string {
    const taskId = randomUUID();
    this.tasks.set(taskId, { taskId, type, createdAt: now(), items });
    void this.timers.wait(this.limits.processingLagMs).then((ran) => {
      if (ran) for (const item of items) item.processed = true;
    });
    return taskId;
  }

  // users

  private createUser(body: Json): UserRecord {
    const userId = requiredString(body, 'user_id');
    if (this.users.has(userId)) {
      throw badRequest(`bad request: user already exists with user_id: ${userId}`);
    }
    const at = now();
    const user: UserRecord = {
      uuid: randomUUID(),
      id: this.nextUserId++,
      userId,
      graphUuid: randomUUID(),
      fields: { metadata: {}, disable_default_ontology: false },
      createdAt: at,
      updatedAt: at,
    };
    this.applyUserFields(user, body);
    this.users.set(userId, user);
    return user;
  }

  private updateUser(user: UserRecord, body: Json): UserRecord {
    this.applyUserFields(user, body);
    user.updatedAt = now();
    return user;
  }

  /** Validates every field before changing any. */
  private applyUserFields(user: UserRecord, body: Json): void {
    const changes: Json = {};
    for (const key of USER_STRING_FIELDS) {
      const value = optionalString(body, key);
      if (value !== undefined) changes[key] = value;
    }
    const disable = optionalBoolean(body, 'disable_default_ontology');
    if (disable !== undefined) changes.disable_default_ontology = disable;
    const metadata = this.checkMetadata(body.metadata, 'metadata');
    if (metadata !== undefined) changes.metadata = metadata;
    Object.assign(user.fields, changes);
  }

  /** Deletes the user's threads, messages and episodes too, as Zep's "right to be forgotten". */
  private deleteUser(user: UserRecord): void {
    for (const thread of [...this.threads.values()]) {
      if (thread.userId === user.userId) this.deleteThread(thread);
    }
    this.episodes = this.episodes.filter((e) => e.userId !== user.userId);
    this.users.delete(user.userId);
  }

  private userJson(user: UserRecord): Json {
    return {
      uuid: user.uuid,
      id: user.id,
      user_id: user.userId,
      project_uuid: this.projectUuid,
      graph_uuid: user.graphUuid,
      ...user.fields,
      created_at: user.createdAt,
      updated_at: user.updatedAt,
      deleted_at: null,
      session_count: [...this.threads.values()].filter((t) => t.userId === user.userId).length,
    };
  }

  // threads

  private createThread(body: Json): ThreadRecord {
    const threadId = requiredString(body, 'thread_id');
    if (overChars(threadId, MAX_THREAD_ID_CHARS)) {
      throw badRequest(`bad request: thread_id must be at most ${MAX_THREAD_ID_CHARS} characters`);
    }
    const userId = requiredString(body, 'user_id');
    if (!this.users.has(userId)) {
      throw badRequest(`bad request: user does not exist with user_id: ${userId}`);
    }
    if (this.threads.has(threadId)) {
      throw badRequest(`bad request: session with id ${threadId} already exists`);
    }
    const thread: ThreadRecord = {
      uuid: randomUUID(),
      threadId,
      userId,
      createdAt: now(),
      messages: [],
    };
    this.threads.set(threadId, thread);
    return thread;
  }

  /** Removes the thread and its messages (Zep keeps what the graph learnt from them; so do we). */
  private deleteThread(thread: ThreadRecord): void {
    if (this.messageIndex) for (const m of thread.messages) this.messageIndex.delete(m.uuid);
    this.threads.delete(thread.threadId);
  }

  private threadJson(thread: ThreadRecord): Json {
    const owner = this.users.get(thread.userId);
    return {
      uuid: thread.uuid,
      thread_id: thread.threadId,
      user_id: thread.userId,
      user_uuid: owner?.uuid,
      graph_uuid: owner?.graphUuid,
      project_uuid: this.projectUuid,
      created_at: thread.createdAt,
    };
  }

  // messages

  private checkMetadata(value: unknown, where: string): Json | undefined {
    if (value === undefined || value === null) return undefined;
    if (!isObject(value)) throw badRequest(`bad request: ${where} must be an object`);
    const keys = Object.keys(value);
    const max = this.limits.maxMetadataKeys;
    if (keys.length > max) {
      throw badRequest(`bad request: ${where} has ${keys.length} keys, at most ${max} allowed`);
    }
    // Scalars and arrays of scalars only, so a copy of each array makes the copy deep.
    const copy: Json = {};
    for (const key of keys) {
      const v = value[key];
      if (isScalar(v)) copy[key] = v;
      else if (Array.isArray(v) && v.every(isScalar)) copy[key] = [...(v as unknown[])];
      else {
        throw badRequest(
          `bad request: ${where}.${key} must be a string, number, boolean or an array of them`,
        );
      }
    }
    return copy;
  }

  /** Validates the whole batch before storing any of it. */
  private checkMessages(body: Json): Omit<MessageRecord, 'uuid' | 'processed' | 'seq'>[] {
    const raw = body.messages;
    if (!Array.isArray(raw)) throw badRequest('bad request: messages is required');
    if (raw.length === 0) throw badRequest('bad request: messages must not be empty');
    const { maxMessagesPerCall, maxContentChars } = this.limits;
    if (raw.length > maxMessagesPerCall) {
      throw badRequest(`max messages per memory of ${maxMessagesPerCall} exceeded`);
    }
    const ignoreRaw = body.ignore_roles ?? [];
    if (!Array.isArray(ignoreRaw)) throw badRequest('bad request: ignore_roles must be an array');
    const ignoreRoles = ignoreRaw.map((r: unknown, i) => checkRole(r, `ignore_roles[${i}]`));
    const receivedAt = now();
    return raw.map((item: unknown, i) => {
      const where = `messages[${i}]`;
      if (!isObject(item)) throw badRequest(`bad request: ${where} must be an object`);
      const role = checkRole(item.role, `${where}.role`);
      const content = item.content;
      if (typeof content !== 'string' || content === '') {
        throw badRequest(`bad request: ${where}.content must not be empty`);
      }
      if (overChars(content, maxContentChars)) {
        throw badRequest(`message content exceeds ${maxContentChars} characters`);
      }
      const name = optionalString(item, 'name');
      const metadata = this.checkMetadata(item.metadata, `${where}.metadata`);
      return {
        role,
        ...(name === undefined ? {} : { name }),
        content,
        created_at: optionalTimestamp(item, 'created_at', `${where}.created_at`) ?? receivedAt,
        ...(metadata === undefined ? {} : { metadata }),
        inGraph: !ignoreRoles.includes(role),
      };
    });
  }

  private addMessages(thread: ThreadRecord, body: Json): Json {
    const checked = this.checkMessages(body);
    const returnContext = optionalBoolean(body, 'return_context') ?? false;
    optionalBoolean(body, 'strict_ontology');
    const stored = checked.map((m): MessageRecord => {
      const record = { uuid: randomUUID(), ...m, processed: false, seq: this.nextSeq++ };
      thread.messages.push(record);
      this.messageIndex?.set(record.uuid, record);
      return record;
    });
    const taskId = this.storeProcessable('add_messages', stored);
    return {
      message_uuids: stored.map((m) => m.uuid),
      task_id: taskId,
      ...(returnContext ? { context: this.contextFor(thread.userId) } : {}),
    };
  }

  /** `lastn` wins; otherwise `cursor` is a 1-based page of `limit` (default 100); oldest first. */
  private listMessages(thread: ThreadRecord, query: URLSearchParams): Json {
    const lastn = queryInt(query, 'lastn');
    const limit = queryInt(query, 'limit') ?? 100;
    const cursor = queryInt(query, 'cursor') ?? 1;
    const all = thread.messages;
    const page =
      lastn === undefined
        ? all.slice((cursor - 1) * limit, cursor * limit)
        : all.slice(Math.max(0, all.length - lastn));
    return {
      messages: page.map(storedMessage),
      row_count: page.length,
      total_count: all.length,
      thread_created_at: thread.createdAt,
      user_id: thread.userId,
      user_uuid: this.users.get(thread.userId)?.uuid,
    };
  }

  private indexedMessages(): Map<string, MessageRecord> {
    if (this.messageIndex === undefined) {
      this.messageIndex = new Map();
      for (const thread of this.threads.values()) {
        for (const m of thread.messages) this.messageIndex.set(m.uuid, m);
      }
    }
    return this.messageIndex;
  }

  private updateMessage(uuid: string | undefined, body: Json): StoredMessage {
    const message = this.indexedMessages().get(uuid ?? '');
    if (!message) throw notFound();
    if (!isObject(body.metadata)) throw badRequest('bad request: metadata is required');
    message.metadata = this.checkMetadata(body.metadata, 'metadata');
    return storedMessage(message);
  }

  // graph

  private addGraphData(body: Json): EpisodeRecord {
    const userId = optionalString(body, 'user_id');
    const graphId = optionalString(body, 'graph_id');
    if ((userId === undefined) === (graphId === undefined)) {
      throw badRequest('bad request: exactly one of user_id and graph_id is required');
    }
    const type = body.type;
    if (typeof type !== 'string' || !(GRAPH_DATA_TYPES as readonly string[]).includes(type)) {
      throw badRequest(`bad request: type must be one of ${GRAPH_DATA_TYPES.join(', ')}`);
    }
    const data = requiredString(body, 'data');
    if (overChars(data, MAX_GRAPH_DATA_CHARS)) {
      throw badRequest(`bad request: data exceeds ${MAX_GRAPH_DATA_CHARS} characters`);
    }
    if (userId !== undefined) this.user(userId);
    const sourceDescription = optionalString(body, 'source_description');
    const metadata = this.checkMetadata(body.metadata, 'metadata');
    const episode: EpisodeRecord = {
      uuid: randomUUID(),
      ...(userId === undefined ? {} : { userId }),
      ...(graphId === undefined ? {} : { graphId }),
      type,
      data,
      createdAt: optionalTimestamp(body, 'created_at') ?? now(),
      ...(sourceDescription === undefined ? {} : { sourceDescription }),
      ...(metadata === undefined ? {} : { metadata }),
      taskId: '',
      processed: false,
      seq: this.nextSeq++,
    };
    this.episodes.push(episode);
    episode.taskId = this.storeProcessable('add_data', [episode]);
    return episode;
  }

  /**
   * A deterministic stand-in for Zep's context block, built from the user's processed messages
   * (in all their threads) and episodes: a test can see exactly what the "graph" has absorbed.
   */
  contextFor(userId: string): string {
    const facts: { seq: number; text: string; at: string }[] = [];
    let threadCount = 0;
    for (const thread of this.threads.values()) {
      if (thread.userId !== userId) continue;
      threadCount += 1;
      for (const m of thread.messages) {
        if (m.processed && m.inGraph) facts.push({ seq: m.seq, text: m.content, at: m.created_at });
      }
    }
    for (const e of this.episodes) {
      if (e.userId === userId && e.processed) {
        facts.push({ seq: e.seq, text: e.data, at: e.createdAt });
      }
    }
    facts.sort((a, b) => a.seq - b.seq);
    const first = this.users.get(userId)?.fields.first_name;
    const who = typeof first === 'string' && first !== '' ? `${first} (${userId})` : userId;
    const summary = `${who} has ${plural(facts.length, 'processed fact')} from ${plural(threadCount, 'thread')}.`;
    return [
      `<USER_SUMMARY>${summary}</USER_SUMMARY>`,
      '<FACTS>',
      ...facts.map((f) => `- ${f.text.replace(/\s*\n\s*/g, ' ')} (Date range: ${f.at} - present)`),
      '</FACTS>',
    ].join('\n');
  }
}

/** The public view of a stored message: a copy, without the emulator's own fields. */
function storedMessage(m: MessageRecord): StoredMessage {
  return {
    uuid: m.uuid,
    role: m.role,
    ...(m.name === undefined ? {} : { name: m.name }),
    content: m.content,
    created_at: m.created_at,
    ...(m.metadata === undefined ? {} : { metadata: structuredClone(m.metadata) }),
    processed: m.processed,
  };
}

function episodeJson(e: EpisodeRecord): Json {
  return {
    uuid: e.uuid,
    content: e.data,
    created_at: e.createdAt,
    processed: e.processed,
    source: e.type,
    source_description: e.sourceDescription,
    metadata: e.metadata,
    task_id: e.taskId,
  };
}

/** A task is completed once everything it wrote is processed. */
function taskJson(task: TaskRecord): Json {
  const done = task.items.every((item) => item.processed);
  return {
    task_id: task.taskId,
    type: task.type,
    status: done ? 'completed' : 'in_progress',
    created_at: task.createdAt,
    updated_at: task.createdAt,
    started_at: task.createdAt,
    ...(done ? { completed_at: now() } : {}),
    progress: { stage: done ? 'completed' : 'processing', message: '' },
  };
}

// ---- faults ----

/** Zep's 429, as seen from Cloudflare in front of it. */
function rateLimitAnswer(retryAfterS: number, bucket: TokenBucket | undefined): Answer {
  const at = Date.now();
  return {
    status: 429,
    headers: {
      'content-type': TEXT_TYPE,
      'retry-after': String(retryAfterS),
      ...(bucket?.headers(at) ?? {
        'x-ratelimit-limit': String(FREE_PLAN_PENALTY_RPM),
        'x-ratelimit-reset': String(Math.ceil(at / 1000) + retryAfterS),
        'x-ratelimit-increment': '1',
      }),
      'x-ratelimit-remaining': '0',
    },
    body: RATE_LIMIT_BODY,
  };
}

// ---- the server ----

function checkOptions(options: ZepEmulatorOptions): Limits {
  const positiveInt = (name: string, value: number): number => {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(`startZepEmulator: ${name} must be a positive integer, got ${value}`);
    }
    return value;
  };
  const lag = options.processingLagMs ?? 0;
  if (!Number.isFinite(lag) || lag < 0) {
    throw new Error(`startZepEmulator: processingLagMs must be >= 0, got ${lag}`);
  }
  const rpm = options.rateLimitPerMinute;
  if (rpm !== undefined && !(Number.isFinite(rpm) && rpm > 0)) {
    throw new Error(`startZepEmulator: rateLimitPerMinute must be > 0, got ${rpm}`);
  }
  return {
    maxMessagesPerCall: positiveInt('maxMessagesPerCall', options.maxMessagesPerCall ?? 30),
    maxContentChars: positiveInt('maxContentChars', options.maxContentChars ?? 2500),
    maxMetadataKeys: positiveInt('maxMetadataKeys', options.maxMetadataKeys ?? 10),
    processingLagMs: lag,
  };
}

/**
 * Starts a local emulator of the Zep Cloud v3 HTTP API, served under `/api/v2` as the
 * `@getzep/zep-cloud` 3.x SDK expects, with scripted faults (error statuses before or after the
 * write is stored, 429s, latency, dropped connections, hooks), a processing lag and an optional
 * token-bucket rate limit. Plain `node:http`, so sockets can be destroyed and answers held back.
 * See the package README for the routes and what each fault does.
 */
export async function startZepEmulator(options: ZepEmulatorOptions = {}): Promise<ZepEmulator> {
  const limits = checkOptions(options);
  const rpm = options.rateLimitPerMinute;
  const bucket = rpm === undefined ? undefined : new TokenBucket(rpm, Date.now());
  const timers = new Timers();
  const project = new ZepProject(limits, timers);

  const accept = ({ arrivedAt, method, url, headers, hasApiKey }: Arrival): Accepted => {
    const inApi = url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`);
    /** Decoded path segments below /api/v2; undefined for a path outside it. */
    const segments = inApi
      ? url.pathname
          .slice(API_PREFIX.length)
          .split('/')
          .filter((s) => s !== '')
          .map(decodeSegment)
      : undefined;
    // The bucket is decided on arrival (like faults), so concurrent requests get it in order.
    const admitted = bucket?.take(arrivedAt) ?? true;
    return {
      path: segments === undefined ? url.pathname : `/${segments.join('/')}`,
      /** What a request gets when no fault intervenes: rate limit, then auth, then the route. */
      perform: (text) => {
        if (!admitted) {
          return rateLimitAnswer(bucket?.retryAfterS(Date.now()) ?? 1, bucket);
        }
        const key = /^Api-Key (.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim();
        if (key === undefined || !hasApiKey(key)) {
          return jsonAnswer(401, { message: 'unauthorized' });
        }
        if (segments === undefined) return jsonAnswer(404, { message: 'not found' });
        return project.answer(method, segments, url.searchParams, text);
      },
    };
  };

  const server = await startEmulatorServer(options, {
    name: 'startZepEmulator',
    defaultApiKey: 'zep-emulator-key',
    jsonType: JSON_TYPE,
    timers,
    accept,
    statusFaultBody: (status) => ({ message: statusText(status).toLowerCase() }),
    errorBody: (message) => ({ message }),
    rateLimitAnswer: (retryAfterS) => rateLimitAnswer(retryAfterS, bucket),
    commonHeaders: () => ({ ...bucket?.headers(Date.now()) }),
  });

  return {
    url: `${server.origin}${API_PREFIX}`,
    ...server.api,
    close: async () => {
      if (options.scan !== false) {
        await writeStoreDump(`zep-${String(server.api.port)}`, project.dumpItems());
      }
      await server.api.close();
    },
    threadMessages: (threadId) => project.threads.get(threadId)?.messages.map(storedMessage) ?? [],
    threadIds: () => [...project.threads.keys()],
    userIds: () => [...project.users.keys()],
    threadOwner: (threadId) => project.threads.get(threadId)?.userId,
  };
}
