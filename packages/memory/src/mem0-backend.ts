import type { MemoryClient, Message as Mem0Message } from 'mem0ai';
import { MEM0_PLATFORM_URL } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { BackendError } from './backend-error.ts';
import type {
  CallOptions,
  ContextMessage,
  MemoryBackend,
  MemoryMessage,
  ThreadRef,
  UserRef,
} from './memory-backend.ts';
import { retryAfterMs } from './retry-after.ts';
import { withTimeout } from './with-timeout.ts';

/**
 * Which mem0 API the backend talks to: the hosted platform, the self-hosted REST server, or
 * `auto`: the platform at mem0's own URL, else whichever answers (see {@link createMem0Backend}).
 */
export type Mem0ApiStyle = 'platform' | 'oss' | 'auto';

/**
 * What an add that ends SUCCEEDED with no memory stored (nothing memorable, or all duplicates)
 * means for its messages: `dead` (dead-lettered with the reason) or `written`.
 */
export type Mem0EmptyResult = 'dead' | 'written';

/** Options of {@link createMem0Backend}. */
export interface Mem0BackendOptions {
  apiKey: string;
  /** The platform's host (no trailing slash), or the self-hosted server's base URL. */
  apiUrl: string;
  style: Mem0ApiStyle;
  /** Messages per add call. Default 20. */
  batchSize?: number;
  /** Timeout of each HTTP call, in ms. Default 10 000. */
  timeoutMs?: number;
  /** How long a platform add waits for its event to end, in ms. Default 60 000. */
  eventTimeoutMs?: number;
  /** First delay between event polls; it grows by half up to 2 s. Default 250. */
  pollIntervalMs?: number;
  /** Let mem0 extract memories (`infer`). Default true. */
  infer?: boolean;
  /** See {@link Mem0EmptyResult}. Default `dead`. */
  onEmpty?: Mem0EmptyResult;
  /** Memories in a context. Default 20. */
  contextMemories?: number;
}

/**
 * mem0 scopes memories by entity ids that are global to a project: users and threads (mem0 runs)
 * are namespaced by tenant, as for Zep.
 */
export const mem0UserId = (user: UserRef): string => `${user.tenant}:${user.userId}`;
export const mem0RunId = (thread: ThreadRef): string => `${thread.tenant}:${thread.threadId}`;

/** The metadata key holding the client message ids of the messages an add carried. */
export const MEM0_IDS_KEY = 'client_message_ids';

const PAGE_SIZE = 200;
/** Pages read when scanning a thread's memories (PAGE_SIZE each). */
const MAX_PAGES = 50;
const MAX_POLL_INTERVAL_MS = 2000;
/** Events this process started and has not yet seen end, remembered for reconciling. */
const MAX_PENDING_EVENTS = 10_000;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A readable reason out of an error body: mem0 answers `detail`, `error` or `details.message`. */
function bodyDetail(text: string): string {
  let detail = text;
  try {
    const body: unknown = JSON.parse(text);
    if (isObject(body)) {
      if (typeof body.detail === 'string') detail = body.detail;
      else if (typeof body.error === 'string') {
        detail = body.error;
        if (isObject(body.details) && typeof body.details.message === 'string') {
          detail = `${body.error}: ${body.details.message}`;
        }
      }
    }
  } catch {
    // Not JSON: the text is the reason.
  }
  return detail.slice(0, 300);
}

/** The wait a throttled answer asks for in its text ("Expected available in 2 seconds."), in ms. */
export function throttleWaitMs(text: string): number | undefined {
  const m = /available in (\d+(?:\.\d+)?) seconds?/i.exec(text);
  return m?.[1] === undefined ? undefined : Math.round(Number(m[1]) * 1000);
}

/** Maps an HTTP error answer of either mem0 API to a {@link BackendError}. */
export function mem0StatusError(
  what: string,
  status: number,
  text: string,
  headers?: Headers,
  cause?: unknown,
): BackendError {
  const detail = bodyDetail(text);
  const message = `mem0 ${what} answered ${status}${detail === '' ? '' : `: ${detail}`}`;
  const base = { status, ...(cause === undefined ? {} : { cause }) };
  // The self-hosted server reports its own providers' failures as 502 with a code.
  let code: unknown;
  try {
    const body: unknown = JSON.parse(text);
    if (isObject(body)) code = body.code;
  } catch {
    code = undefined;
  }
  if (status === 429 || code === 'provider_rate_limited') {
    const ms = retryAfterMs(headers) ?? throttleWaitMs(text);
    return new BackendError('rate_limited', message, {
      ...base,
      ...(ms === undefined ? {} : { retryAfterMs: ms }),
    });
  }
  // A rejected key, an exhausted quota or the server's own provider key: hold until fixed.
  if (status === 401 || status === 403 || status === 413 || code === 'provider_auth_failed') {
    return new BackendError('auth', message, base);
  }
  if (status === 400 || status === 409 || status === 422) {
    return new BackendError('permanent', message, base);
  }
  return new BackendError('transient', message, base);
}

/**
 * Maps what the `mem0ai` client throws to a {@link BackendError}. Its errors carry
 * `errorCode: "HTTP_<status>"` and the raw body as message; a dropped connection arrives as the
 * bare `fetch` TypeError.
 */
export function classifyMem0Error(err: unknown, what: string): BackendError {
  if (err instanceof BackendError) return err;
  const e = toError(err);
  const code = (e as { errorCode?: unknown }).errorCode;
  const status = typeof code === 'string' ? /^HTTP_(\d{3})$/.exec(code)?.[1] : undefined;
  if (status !== undefined) return mem0StatusError(what, Number(status), e.message, undefined, e);
  if (e.name === 'AbortError' || e.name === 'TimeoutError') {
    return new BackendError('transient', `mem0 ${what} timed out`, { cause: e });
  }
  return new BackendError('transient', `mem0 ${what} failed: ${e.message}`, { cause: e });
}

/** A memory as either API lists it (the platform client answers in camelCase). */
interface Mem0Memory {
  id: string;
  memory: string;
  metadata: Json | null;
  createdAt: string;
}

function toMemory(raw: unknown): Mem0Memory | undefined {
  if (!isObject(raw) || typeof raw.id !== 'string' || typeof raw.memory !== 'string') {
    return undefined;
  }
  const created = raw.created_at ?? raw.createdAt;
  return {
    id: raw.id,
    memory: raw.memory,
    metadata: isObject(raw.metadata) ? raw.metadata : null,
    createdAt: typeof created === 'string' ? created : '',
  };
}

/** The client message ids a memory came from. */
function memoryIds(m: Mem0Memory): string[] {
  const ids = m.metadata?.[MEM0_IDS_KEY];
  if (Array.isArray(ids)) return ids.filter((x): x is string => typeof x === 'string');
  const one = m.metadata?.client_message_id;
  return typeof one === 'string' ? [one] : [];
}

const byCreated = (a: Mem0Memory, b: Mem0Memory): number =>
  a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0;

/**
 * A memory shown as a context entry: mem0 keeps extracted facts, not messages, so the entry is
 * the fact, with the `system` role and the space-separated ids of the messages it came from.
 */
const toContext = (m: Mem0Memory): ContextMessage => ({
  clientMessageId: memoryIds(m).join(' '),
  role: 'system',
  content: m.memory,
  createdAt: m.createdAt,
});

const contextText = (memories: readonly Mem0Memory[]): string =>
  memories.map((m) => `- ${m.memory}`).join('\n');

/** An add's answer in any of the shapes mem0 has used: v3 object, v2 list, v1 sync results. */
interface AddAnswer {
  eventId?: string;
  status?: string;
  results?: unknown[];
  error?: string;
}

function parseAddAnswer(raw: unknown): AddAnswer {
  const first = Array.isArray(raw) ? (raw[0] as unknown) : raw;
  if (!isObject(first)) return {};
  const eventId = first.event_id ?? first.eventId;
  const answer: AddAnswer = {};
  if (typeof eventId === 'string') answer.eventId = eventId;
  if (typeof first.status === 'string') answer.status = first.status.toUpperCase();
  if (Array.isArray(first.results)) answer.results = first.results;
  if (typeof first.error === 'string') answer.error = first.error;
  return answer;
}

/** An event as `GET /v1/event/{id}/` shows it. */
interface EventView {
  status: string;
  results: unknown[];
  error: string | undefined;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED']);

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Consecutive messages with the same metadata, at most `size` per group: one add each. */
function groupsOf(messages: readonly MemoryMessage[], size: number): MemoryMessage[][] {
  const groups: MemoryMessage[][] = [];
  let key: string | undefined;
  for (const m of messages) {
    const { client_message_id: _, ...rest } = m.metadata;
    const k = JSON.stringify(rest);
    const last = groups.at(-1);
    if (last !== undefined && k === key && last.length < size) last.push(m);
    else groups.push([m]);
    key = k;
  }
  return groups;
}

/** Roles mem0 takes; a tool's output is passed on as the assistant's. */
const mem0Role = (m: MemoryMessage): 'user' | 'assistant' | 'system' =>
  m.role === 'tool' ? 'assistant' : m.role;

interface PendingEvent {
  eventId: string;
  userId: string;
  runId: string;
  ids: string[];
}

/**
 * The mem0 backend. On the platform (the `mem0ai` client) an add is only accepted: mem0 extracts
 * memories later and reports the outcome on an event, which this backend polls, so a batch counts
 * as written only once its event SUCCEEDED with memories stored; a FAILED event, or one that
 * stored nothing (`onEmpty: 'dead'`), is a permanent error carrying mem0's reason. The
 * self-hosted server answers adds synchronously (a small fetch client). Every add carries its
 * messages' client ids in `metadata.client_message_ids`; `findWritten` reads them back from the
 * thread's memories, and first asks about events this process started and has not seen end, so
 * an add still being processed is never sent again.
 */
export function createMem0Backend(options: Mem0BackendOptions): MemoryBackend {
  const base = options.apiUrl.replace(/\/+$/, '');
  let style: Promise<'platform' | 'oss'> | undefined;
  const batchSize = options.batchSize ?? 20;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const eventTimeoutMs = options.eventTimeoutMs ?? 60_000;
  const firstPollMs = options.pollIntervalMs ?? 250;
  const infer = options.infer ?? true;
  const onEmpty = options.onEmpty ?? 'dead';
  const contextMemories = options.contextMemories ?? 20;
  const pending = new Map<string, PendingEvent>();
  let client: Promise<MemoryClient> | undefined;

  /** The platform client, loaded on first use with mem0's telemetry switched off. */
  function sdk(): Promise<MemoryClient> {
    client ??= (async () => {
      // mem0ai reads this once, when the module loads; it would otherwise report every call.
      process.env.MEM0_TELEMETRY = 'false';
      const { MemoryClient: Client } = await import('mem0ai');
      return new Client({ apiKey: options.apiKey, host: base });
    })();
    return client;
  }

  /**
   * The API style, detected once when `auto`: the self-hosted server answers `GET /memories`
   * (200, or 401 for a bad key); the platform has no such path (404).
   */
  function styleOf(callOptions?: CallOptions): Promise<'platform' | 'oss'> {
    if (options.style !== 'auto') return Promise.resolve(options.style);
    if (base === MEM0_PLATFORM_URL) return Promise.resolve('platform');
    style ??= (async () => {
      try {
        const status = await withTimeout(timeoutMs, callOptions?.signal, async (signal) => {
          const res = await fetch(`${base}/memories?user_id=memfleet-style-probe`, {
            headers: { 'x-api-key': options.apiKey },
            signal,
          });
          await res.body?.cancel();
          return res.status;
        });
        return status === 404 ? 'platform' : 'oss';
      } catch (err: unknown) {
        style = undefined;
        throw classifyMem0Error(err, 'API style detection');
      }
    })();
    return style;
  }

  // Load the client up front where it will be used, so the first read does not pay for it.
  if (options.style === 'platform' || (options.style === 'auto' && base === MEM0_PLATFORM_URL)) {
    void sdk();
  }

  /** One client call under a timeout: the client itself takes no signal. */
  function viaSdk<T>(
    what: string,
    callOptions: CallOptions | undefined,
    fn: (c: MemoryClient) => Promise<T>,
  ): Promise<T> {
    return withTimeout(timeoutMs, callOptions?.signal, async (signal) => {
      const c = await sdk();
      return new Promise<T>((resolve, reject) => {
        const onAbort = (): void => {
          reject(new BackendError('transient', `mem0 ${what} timed out`));
        };
        if (signal.aborted) {
          onAbort();
          return;
        }
        signal.addEventListener('abort', onAbort, { once: true });
        fn(c).then(
          (value) => {
            signal.removeEventListener('abort', onAbort);
            resolve(value);
          },
          (err: unknown) => {
            signal.removeEventListener('abort', onAbort);
            reject(classifyMem0Error(err, what));
          },
        );
      });
    });
  }

  /** A direct HTTP call: the events API (no client method) and the self-hosted server. */
  async function http(
    what: string,
    method: string,
    path: string,
    callOptions: CallOptions | undefined,
    body?: unknown,
  ): Promise<unknown> {
    const headers: Record<string, string> =
      (await styleOf(callOptions)) === 'platform'
        ? { authorization: `Token ${options.apiKey}` }
        : { 'x-api-key': options.apiKey };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      ({ res, text } = await withTimeout(timeoutMs, callOptions?.signal, async (signal) => {
        const answer = await fetch(`${base}${path}`, {
          method,
          headers,
          signal,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { res: answer, text: await answer.text() };
      }));
    } catch (err: unknown) {
      throw classifyMem0Error(err, what);
    }
    if (!res.ok) throw mem0StatusError(what, res.status, text, res.headers);
    try {
      return text === '' ? null : (JSON.parse(text) as unknown);
    } catch {
      throw new BackendError('transient', `mem0 ${what} answered ${res.status} with no JSON`);
    }
  }

  async function getEvent(eventId: string, callOptions?: CallOptions): Promise<EventView> {
    const raw = await http(
      'event.get',
      'GET',
      `/v1/event/${encodeURIComponent(eventId)}/`,
      callOptions,
    );
    if (!isObject(raw) || typeof raw.status !== 'string') {
      throw new BackendError('transient', `mem0 event ${eventId}: unreadable answer`);
    }
    return {
      status: raw.status.toUpperCase(),
      results: Array.isArray(raw.results) ? raw.results : [],
      error: typeof raw.error === 'string' ? raw.error : undefined,
    };
  }

  /** Polls an event until it ends, the event timeout passes or the caller's signal aborts. */
  async function waitForEvent(eventId: string, callOptions?: CallOptions): Promise<EventView> {
    const deadline = Date.now() + eventTimeoutMs;
    const stop = callOptions?.signal ?? new AbortController().signal;
    let delay = firstPollMs;
    for (;;) {
      const event = await getEvent(eventId, callOptions);
      if (TERMINAL.has(event.status)) return event;
      const wait = Math.min(delay, deadline - Date.now());
      if (wait <= 0 || !(await sleep(wait, stop))) return event;
      delay = Math.min(MAX_POLL_INTERVAL_MS, Math.round(delay * 1.5));
    }
  }

  /** Throws what an ended add means for its messages, if it is not "written". */
  function settle(what: string, ids: readonly string[], stored: number, error?: string): void {
    const which = ids.length === 1 ? `message ${ids[0]}` : `${ids.length} messages`;
    if (error !== undefined) {
      throw new BackendError('permanent', `mem0 ${what} FAILED for ${which}: ${error}`);
    }
    if (stored === 0 && onEmpty === 'dead') {
      throw new BackendError(
        'permanent',
        `mem0 ${what} SUCCEEDED but stored no memory for ${which} (nothing memorable, or all duplicates; MEM0_EMPTY_RESULT=written accepts this)`,
      );
    }
  }

  function remember(event: PendingEvent): void {
    pending.set(event.eventId, event);
    if (pending.size > MAX_PENDING_EVENTS) {
      const oldest = pending.keys().next();
      if (oldest.done !== true) pending.delete(oldest.value);
    }
  }

  async function addGroup(
    thread: ThreadRef,
    group: readonly MemoryMessage[],
    callOptions: CallOptions | undefined,
  ): Promise<void> {
    const ids = group.map((m) => m.clientMessageId);
    const { client_message_id: _, ...shared } = group[0]?.metadata ?? {};
    const metadata = { ...shared, [MEM0_IDS_KEY]: ids };
    const messages = group.map((m) => ({ role: mem0Role(m), content: m.content }));
    const userId = mem0UserId(thread);
    const runId = mem0RunId(thread);
    if ((await styleOf(callOptions)) === 'oss') {
      const raw = await http('memories.add', 'POST', '/memories', callOptions, {
        messages,
        user_id: userId,
        run_id: runId,
        metadata,
        infer,
      });
      const results = isObject(raw) && Array.isArray(raw.results) ? raw.results : [];
      settle('add', ids, results.length);
      return;
    }
    const first = group[0]?.createdAt;
    const seconds = first === undefined ? NaN : Math.floor(Date.parse(first) / 1000);
    const answer = parseAddAnswer(
      await viaSdk('memories.add', callOptions, (c) =>
        // The wire API takes `system` too (and leaves it out of extraction); the client's type
        // names only user and assistant.
        c.add(messages as Mem0Message[], {
          userId,
          runId,
          metadata,
          infer,
          ...(Number.isFinite(seconds) ? { timestamp: seconds } : {}),
        }),
      ),
    );
    if (answer.status === 'FAILED') settle('add', ids, 0, answer.error ?? 'no reason given');
    if (answer.eventId === undefined || answer.status === 'SUCCEEDED') {
      if (answer.results === undefined && answer.status !== 'SUCCEEDED') {
        throw new BackendError('transient', 'mem0 add answered with neither an event nor results');
      }
      settle('add', ids, answer.results?.length ?? 0);
      return;
    }
    const eventId = answer.eventId;
    remember({ eventId, userId, runId, ids });
    let event: EventView;
    try {
      event = await waitForEvent(eventId, callOptions);
    } catch (err: unknown) {
      // The add is accepted: whatever failed since, the outcome is uncertain, never a reason to
      // pause and resend blindly.
      const e = err instanceof BackendError ? err : classifyMem0Error(err, 'event.get');
      throw new BackendError('transient', `mem0 event ${eventId}: ${e.message}`, { cause: e });
    }
    if (!TERMINAL.has(event.status)) {
      throw new BackendError(
        'transient',
        `mem0 event ${eventId} still ${event.status} after waiting; its outcome is checked before any resend`,
      );
    }
    pending.delete(eventId);
    settle(
      `event ${eventId}`,
      ids,
      event.results.length,
      event.status === 'FAILED' ? (event.error ?? 'no reason given') : undefined,
    );
  }

  /** Every memory of a scope (entity ids), oldest first. */
  async function listMemories(
    scope: { user_id: string; run_id?: string },
    callOptions: CallOptions | undefined,
    stopWhen?: (page: Mem0Memory[]) => boolean,
  ): Promise<Mem0Memory[]> {
    const all: Mem0Memory[] = [];
    if ((await styleOf(callOptions)) === 'oss') {
      const query = new URLSearchParams({ ...scope, top_k: '1000' });
      const raw = await http('memories.list', 'GET', `/memories?${query.toString()}`, callOptions);
      const list = isObject(raw) ? raw.results : raw;
      if (Array.isArray(list)) {
        for (const item of list) {
          const m = toMemory(item);
          if (m !== undefined) all.push(m);
        }
      }
      stopWhen?.(all);
      return all.sort(byCreated);
    }
    const filters =
      scope.run_id === undefined
        ? { user_id: scope.user_id }
        : { AND: [{ user_id: scope.user_id }, { run_id: scope.run_id }] };
    for (let page = 1; page <= MAX_PAGES; page += 1) {
      const raw = await viaSdk('memories.getAll', callOptions, (c) =>
        c.getAll({ filters, page, pageSize: PAGE_SIZE }),
      );
      const items = isObject(raw) && Array.isArray(raw.results) ? raw.results : [];
      const memories = items.map(toMemory).filter((m) => m !== undefined);
      all.push(...memories);
      if (stopWhen?.(memories) === true) break;
      if (!isObject(raw) || raw.next === null || raw.next === undefined || items.length === 0) {
        break;
      }
    }
    return all.sort(byCreated);
  }

  return {
    name: 'mem0',
    maxBatchSize: batchSize,
    writeTimeoutMs: options.style === 'oss' ? timeoutMs : timeoutMs + eventTimeoutMs,

    // mem0 creates its entities with their first memory.
    // mem0 has no users or threads to create: they exist with their first memory.
    isEnsured: () => true,
    async ensureUser() {},
    async ensureThread() {},

    async addMessages(thread, messages, callOptions) {
      for (const group of groupsOf(messages, batchSize)) {
        await addGroup(thread, group, callOptions);
      }
    },

    async findWritten(thread, clientMessageIds, callOptions) {
      const wanted = new Set(clientMessageIds);
      const found = new Set<string>();
      const runId = mem0RunId(thread);
      for (const event of [...pending.values()]) {
        if (event.runId !== runId || !event.ids.some((id) => wanted.has(id))) continue;
        const view = await getEvent(event.eventId, callOptions);
        if (!TERMINAL.has(view.status)) {
          throw new BackendError(
            'transient',
            `mem0 event ${event.eventId} of ${event.ids.length} message(s) is still ${view.status}; waiting for it before deciding`,
          );
        }
        pending.delete(event.eventId);
        if (view.status === 'SUCCEEDED' && (view.results.length > 0 || onEmpty === 'written')) {
          for (const id of event.ids) if (wanted.has(id)) found.add(id);
        }
      }
      await listMemories({ user_id: mem0UserId(thread), run_id: runId }, callOptions, (page) => {
        for (const m of page) for (const id of memoryIds(m)) if (wanted.has(id)) found.add(id);
        return found.size === wanted.size;
      });
      return found;
    },

    async recentMessages(thread, limit, callOptions) {
      const memories = await listMemories(
        { user_id: mem0UserId(thread), run_id: mem0RunId(thread) },
        callOptions,
      );
      return limit <= 0 ? [] : memories.slice(-limit).map(toContext);
    },

    async getContext(thread, callOptions) {
      const wanted = callOptions?.messages ?? 20;
      const [userMemories, threadMemories] = await Promise.all([
        listMemories({ user_id: mem0UserId(thread) }, callOptions),
        wanted > 0
          ? listMemories({ user_id: mem0UserId(thread), run_id: mem0RunId(thread) }, callOptions)
          : Promise.resolve([]),
      ]);
      return {
        context: contextText(userMemories.slice(-contextMemories)),
        messages: threadMemories.slice(-wanted).map(toContext),
      };
    },

    async eraseUser(user, callOptions) {
      const userId = mem0UserId(user);
      if ((await styleOf(callOptions)) === 'oss') {
        await http(
          'memories.deleteAll',
          'DELETE',
          `/memories?${new URLSearchParams({ user_id: userId }).toString()}`,
          callOptions,
        );
        return;
      }
      const answer = await viaSdk('memories.deleteAll', callOptions, (c) =>
        c.deleteAll({ userId }),
      );
      const eventId = parseAddAnswer(answer).eventId;
      if (eventId !== undefined) {
        const event = await waitForEvent(eventId, callOptions);
        if (event.status !== 'SUCCEEDED') {
          throw new BackendError(
            'transient',
            `mem0 delete of ${userId}: event ${eventId} is ${event.status}${event.error === undefined ? '' : `: ${event.error}`}`,
          );
        }
      }
      // The user entity itself goes too.
      await viaSdk('entities.delete', callOptions, (c) => c.deleteUsers({ userId })).catch(
        (err: unknown) => {
          if (!(err instanceof BackendError && err.details.status === 404)) throw err;
        },
      );
      for (const [id, event] of pending) if (event.userId === userId) pending.delete(id);
    },
  };
}
