import { Zep, ZepClient, ZepError, ZepTimeoutError } from '@getzep/zep-cloud';
import { toError } from '@memfleet/errors/to-error';
import { BoundedSet } from './bounded-set.ts';
import { BackendError } from './backend-error.ts';
import { retryAfterMs } from './retry-after.ts';
import { createZepFetcher } from './zep-fetcher.ts';
import { withTimeout } from './with-timeout.ts';
import type {
  CallOptions,
  ContextMessage,
  MemoryBackend,
  MemoryMessage,
  MessageRole,
  ThreadRef,
  UserRef,
} from './memory-backend.ts';

/** Most messages Zep accepts in one `thread.addMessages` call. */
export const ZEP_MAX_MESSAGES_PER_CALL = 30;
/**
 * Messages a drain takes at once: the contract's largest request. At 100 messages a request this
 * gave 10–16 % more messages a second than drains of 30 (less worker and Postgres CPU a message).
 */
const ZEP_DRAIN_BATCH = 100;
/** Most metadata keys Zep accepts on a message (one of them is `client_message_id`). */
export const ZEP_MAX_METADATA_KEYS = 10;
const ZEP_MAX_THREAD_ID_CHARS = 500;

/** Options of {@link createZepBackend}. */
export interface ZepBackendOptions {
  apiKey: string;
  /** v3 API base, including `/api/v2`. */
  apiUrl: string;
  /** Messages per `addMessages` call, at most 30. Default 30. */
  batchSize?: number;
  /** Longest message content sent, in characters; longer messages are rejected. Default 2500. */
  messageMaxChars?: number;
  /**
   * Timeout of each call, in ms; callers may pass a shorter `signal`. Creating a thread that exists
   * reads it within the same time. Default 10 000.
   */
  timeoutMs?: number;
  /** Messages in the context's `messages`. Default 20. */
  contextMessages?: number;
  /** Users and threads remembered as existing, so a drain does not re-create them. Default 10 000. */
  ensuredCacheSize?: number;
}

/** What each SDK call is given: its own timer (a backstop), no retries, and the call's signal. */
interface SdkRequestOptions {
  timeoutInSeconds: number;
  maxRetries: number;
  abortSignal: AbortSignal;
}

/**
 * Zep ids are global per project: users and threads are namespaced by tenant so two tenants with
 * the same user or thread id never meet.
 */
export const zepUserId = (user: UserRef): string => `${user.tenant}:${user.userId}`;
export const zepThreadId = (thread: ThreadRef): string => `${thread.tenant}:${thread.threadId}`;

function bodyMessage(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 300);
  if (typeof body === 'object' && body !== null && 'message' in body) {
    return String(body.message).slice(0, 300);
  }
  return body === undefined ? '' : JSON.stringify(body).slice(0, 300);
}

/** True for Zep's answer to creating a user or thread that exists (400 "already exists", or 409). */
function isAlreadyExists(err: unknown): boolean {
  return (
    err instanceof ZepError &&
    (err.statusCode === 409 ||
      (err.statusCode === 400 && /already exists/i.test(bodyMessage(err.body))))
  );
}

const isNotFound = (err: unknown): boolean => err instanceof ZepError && err.statusCode === 404;

/**
 * Maps what the SDK throws to a {@link BackendError}. The SDK reports its own timeout as a
 * `ZepError` whose message is `"timeout"` (quoted), an abort as "The user aborted a request", and a
 * dropped connection as the transport's socket error ("other side closed"), all without a status:
 * each is transient (uncertain).
 */
export function classifyZepError(err: unknown, what: string): BackendError {
  if (err instanceof BackendError) return err;
  if (err instanceof ZepTimeoutError) {
    return new BackendError('transient', `zep ${what} timed out`, { cause: err });
  }
  if (err instanceof ZepError) {
    const status = err.statusCode;
    if (status === undefined) {
      const reason =
        err.message === '"timeout"' || err.message === 'The user aborted a request'
          ? 'timed out'
          : `failed: ${err.message}`;
      return new BackendError('transient', `zep ${what} ${reason}`, { cause: err });
    }
    const detail = bodyMessage(err.body);
    const text = `zep ${what} answered ${status}${detail === '' ? '' : `: ${detail}`}`;
    if (status === 429) {
      const ms = retryAfterMs(err.rawResponse?.headers);
      return new BackendError('rate_limited', text, {
        status,
        cause: err,
        ...(ms !== undefined ? { retryAfterMs: ms } : {}),
      });
    }
    if (status === 401 || status === 403) {
      return new BackendError('auth', text, { status, cause: err });
    }
    if (status === 408 || status >= 500) {
      return new BackendError('transient', text, { status, cause: err });
    }
    return new BackendError('permanent', text, { status, cause: err });
  }
  const e = toError(err);
  // The SDK validates request bodies before sending (its JsonError carries `errors`).
  if (Array.isArray((e as { errors?: unknown }).errors)) {
    return new BackendError('permanent', `zep ${what} rejected locally: ${e.message}`, {
      cause: e,
    });
  }
  return new BackendError('transient', `zep ${what} failed: ${e.message}`, { cause: e });
}

function toZepRole(role: MessageRole): Zep.RoleType {
  return role;
}

function fromZepRole(role: Zep.RoleType): MessageRole {
  if (role === 'function') return 'tool';
  if (role === 'norole') return 'user';
  return role;
}

/** Length in code points, as Zep counts characters. */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

const SCALAR_TYPES = new Set(['string', 'number', 'boolean']);

/** Zep takes scalars and arrays of scalars as metadata values; anything else travels as JSON. */
function zepMetadataValue(value: unknown): unknown {
  if (value === null || SCALAR_TYPES.has(typeof value)) return value;
  if (Array.isArray(value) && value.every((v) => v === null || SCALAR_TYPES.has(typeof v))) {
    return value;
  }
  return JSON.stringify(value);
}

/**
 * The Zep Cloud backend on the official SDK (v3 API). Writes go out with the SDK's retries off
 * (`maxRetries: 0`): the fleet owns retries, and reconciles through `findWritten` (the thread's
 * recent messages, matched on `metadata.client_message_id`) before it resends after an uncertain
 * outcome, since Zep stores a re-posted message twice.
 */
export function createZepBackend(options: ZepBackendOptions): MemoryBackend {
  const batchSize = Math.min(
    options.batchSize ?? ZEP_MAX_MESSAGES_PER_CALL,
    ZEP_MAX_MESSAGES_PER_CALL,
  );
  const maxChars = options.messageMaxChars ?? 2500;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const contextMessages = options.contextMessages ?? 20;
  const client = new ZepClient({
    apiKey: options.apiKey,
    baseUrl: options.apiUrl,
    fetcher: createZepFetcher().fetcher,
  });
  const ensuredUsers = new BoundedSet(options.ensuredCacheSize ?? 10_000);
  // Keyed `<zep user id>\n<zep thread id>` so that erasing a user forgets their threads too.
  const ensuredThreads = new BoundedSet(options.ensuredCacheSize ?? 10_000);

  /**
   * One SDK call under the backend's timeout and the caller's signal, its failure classified. The
   * SDK's own timer is a backstop; the signal decides. The fleet owns retries: a write is never
   * re-sent blindly (a 5xx may follow a commit), and a read runs under a budget the SDK's 1 s retry
   * delay would blow.
   */
  async function call<T>(
    what: string,
    callOptions: CallOptions | undefined,
    fn: (request: SdkRequestOptions) => Promise<T>,
  ): Promise<T> {
    try {
      return await withTimeout(timeoutMs, callOptions?.signal, (abortSignal) =>
        fn({ timeoutInSeconds: timeoutMs / 1000 + 1, maxRetries: 0, abortSignal }),
      );
    } catch (err: unknown) {
      throw classifyZepError(err, what);
    }
  }

  function checkThreadId(thread: ThreadRef): string {
    const id = zepThreadId(thread);
    if (id.length > ZEP_MAX_THREAD_ID_CHARS) {
      throw new BackendError(
        'permanent',
        `zep thread id is ${id.length} characters; Zep allows ${ZEP_MAX_THREAD_ID_CHARS}`,
      );
    }
    return id;
  }

  function toZepMessage(m: MemoryMessage): Zep.Message {
    const content = m.content;
    // A string never has more code points than UTF-16 units: count them only when it could be over.
    if (content.length > maxChars) {
      const chars = codePoints(content);
      if (chars > maxChars) {
        throw new BackendError(
          'permanent',
          `message ${m.clientMessageId}: content is ${chars} characters, over the Zep limit of ${maxChars} (ZEP_MESSAGE_MAX_CHARS)`,
        );
      }
    }
    const metadata: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(m.metadata)) {
      if (key !== 'client_message_id') metadata[key] = zepMetadataValue(value);
    }
    metadata.client_message_id = m.clientMessageId;
    if (Object.keys(metadata).length > ZEP_MAX_METADATA_KEYS) {
      throw new BackendError(
        'permanent',
        `message ${m.clientMessageId}: metadata has ${Object.keys(metadata).length - 1} keys; Zep allows ${ZEP_MAX_METADATA_KEYS - 1} besides client_message_id`,
      );
    }
    return {
      role: toZepRole(m.role),
      content,
      createdAt: m.createdAt,
      metadata,
      ...(m.name !== undefined ? { name: m.name } : {}),
    };
  }

  const toContext = (m: Zep.Message): ContextMessage => {
    const cmid = m.metadata?.client_message_id;
    return {
      clientMessageId: typeof cmid === 'string' ? cmid : (m.uuid ?? ''),
      role: fromZepRole(m.role),
      content: m.content,
      createdAt: m.createdAt ?? '',
    };
  };

  async function lastMessages(
    thread: ThreadRef,
    lastn: number,
    callOptions: CallOptions | undefined,
  ): Promise<Zep.Message[]> {
    const threadId = checkThreadId(thread);
    return call('thread.get', callOptions, async (request) => {
      try {
        const res = await client.thread.get(threadId, { lastn }, request);
        return res.messages ?? [];
      } catch (err: unknown) {
        if (isNotFound(err)) return [];
        throw err;
      }
    });
  }

  function forgetThread(thread: ThreadRef): void {
    const userKey = zepUserId(thread);
    ensuredUsers.delete(userKey);
    ensuredThreads.delete(`${userKey}\n${zepThreadId(thread)}`);
  }

  return {
    name: 'zep',
    maxBatchSize: batchSize,
    drainBatchSize: Math.max(batchSize, ZEP_DRAIN_BATCH),

    isEnsured(thread) {
      const userId = zepUserId(thread);
      return ensuredUsers.has(userId) && ensuredThreads.has(`${userId}\n${zepThreadId(thread)}`);
    },

    async ensureUser(user, callOptions) {
      const userId = zepUserId(user);
      if (ensuredUsers.has(userId)) return;
      await call('user.add', callOptions, async (request) => {
        try {
          await client.user.add({ userId }, request);
        } catch (err: unknown) {
          if (!isAlreadyExists(err)) throw err;
        }
      });
      ensuredUsers.add(userId);
    },

    async ensureThread(thread, callOptions) {
      const userId = zepUserId(thread);
      const threadId = checkThreadId(thread);
      const key = `${userId}\n${threadId}`;
      if (ensuredThreads.has(key)) return;
      await call('thread.create', callOptions, async (request) => {
        try {
          await client.thread.create({ threadId, userId }, request);
        } catch (err: unknown) {
          if (!isAlreadyExists(err)) throw err;
          // Thread ids are global per project: an existing thread must belong to this user.
          const res = await client.thread.get(threadId, { lastn: 1 }, request);
          if (res.userId !== undefined && res.userId !== userId) {
            throw new BackendError('permanent', `zep thread ${threadId} belongs to another user`);
          }
        }
      });
      ensuredThreads.add(key);
    },

    async addMessages(thread, messages, callOptions) {
      const threadId = checkThreadId(thread);
      const zepMessages = messages.map(toZepMessage);
      for (let i = 0; i < zepMessages.length; i += batchSize) {
        const chunk = zepMessages.slice(i, i + batchSize);
        await call('thread.addMessages', callOptions, async (request) => {
          try {
            await client.thread.addMessages(threadId, { messages: chunk }, request);
          } catch (err: unknown) {
            if (isNotFound(err)) {
              // The thread (or its user) was deleted behind the cache: create it again next time.
              forgetThread(thread);
              throw new BackendError('transient', `zep thread ${threadId} does not exist`, {
                status: 404,
                cause: err,
              });
            }
            throw err;
          }
        });
      }
    },

    async findWritten(thread, clientMessageIds, callOptions) {
      const wanted = new Set(clientMessageIds);
      // Only this thread's drain writes to it, so an uncertain batch is at the thread's tail; the
      // margin covers messages written to the thread by other means since.
      const recent = await lastMessages(
        thread,
        Math.min(1000, clientMessageIds.length * 2 + 20),
        callOptions,
      );
      const found = new Set<string>();
      for (const m of recent) {
        const cmid = m.metadata?.client_message_id;
        if (typeof cmid === 'string' && wanted.has(cmid)) found.add(cmid);
      }
      return found;
    },

    async recentMessages(thread, limit, callOptions) {
      return (await lastMessages(thread, limit, callOptions)).map(toContext);
    },

    async getContext(thread, callOptions) {
      const threadId = checkThreadId(thread);
      const wanted = callOptions?.messages ?? contextMessages;
      const [context, messages] = await Promise.all([
        call('thread.getUserContext', callOptions, async (request) => {
          try {
            const res = await client.thread.getUserContext(threadId, {}, request);
            return res.context ?? '';
          } catch (err: unknown) {
            if (isNotFound(err)) return '';
            throw err;
          }
        }),
        wanted > 0 ? lastMessages(thread, wanted, callOptions) : Promise.resolve([]),
      ]);
      return { context, messages: messages.map(toContext) };
    },

    async eraseUser(user, callOptions) {
      const userId = zepUserId(user);
      await call('user.delete', callOptions, async (request) => {
        try {
          await client.user.delete(userId, request);
        } catch (err: unknown) {
          if (!isNotFound(err)) throw err;
        }
      });
      ensuredUsers.delete(userId);
      ensuredThreads.deleteWhere((key) => key.startsWith(`${userId}\n`));
    },
  };
}
