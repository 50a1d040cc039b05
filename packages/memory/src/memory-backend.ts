/** Roles a chat message may have. */
export type MessageRole = 'user' | 'assistant' | 'system' | 'tool';

/** A user of one tenant. Backends namespace users per tenant. */
export interface UserRef {
  tenant: string;
  userId: string;
}

/** A thread of one tenant, owned by one user. */
export interface ThreadRef extends UserRef {
  threadId: string;
}

/** A message as written to a backend (already redacted). */
export interface MemoryMessage {
  clientMessageId: string;
  role: MessageRole;
  content: string;
  name?: string;
  /** ISO-8601. */
  createdAt: string;
  metadata: Record<string, unknown>;
}

/** A message as read back for context. */
export interface ContextMessage {
  clientMessageId: string;
  role: MessageRole;
  content: string;
  /** ISO-8601. */
  createdAt: string;
}

/** Memory context for a thread: a text block and the messages it was built from. */
export interface MemoryContext {
  context: string;
  messages: ContextMessage[];
}

/** Per-call options every backend method takes. */
export interface CallOptions {
  /** Aborts the call; the backend stops waiting and throws a transient error. */
  signal?: AbortSignal;
}

/** Options of {@link MemoryBackend.getContext}. */
export interface ContextOptions extends CallOptions {
  messages?: number;
}

/**
 * The one interface every memory store implements. Writes are never deduplicated by the caller's
 * trust in the backend: `findWritten` lets the worker reconcile after an uncertain outcome.
 */
export interface MemoryBackend {
  readonly name: string;
  /** Most messages one `addMessages` call accepts. */
  readonly maxBatchSize: number;
  /**
   * Most messages a drain takes from the outbox at once, sent in calls of up to `maxBatchSize`
   * one after another, with one ledger check, attempt count, ledger record and outbox commit for
   * them all. `maxBatchSize` when absent.
   */
  readonly drainBatchSize?: number;
  /**
   * How long one `addMessages` call may take in all, when longer than a single request (mem0
   * waits for its event there). The fleet's backend timeout applies when absent.
   */
  readonly writeTimeoutMs?: number;
  /**
   * True when this process knows the thread and its user exist in the store (it created or found
   * them), so {@link ensureUser} and {@link ensureThread} would not call the store: the drain then
   * skips them, and their trips through the backend gate.
   */
  isEnsured(thread: ThreadRef): boolean;
  /** Creates the user if missing; an existing user is fine. */
  ensureUser(user: UserRef, options?: CallOptions): Promise<void>;
  /** Creates the thread for its user if missing; an existing thread of that user is fine. */
  ensureThread(thread: ThreadRef, options?: CallOptions): Promise<void>;
  /** Appends messages to the thread in the given order, in one call. */
  addMessages(
    thread: ThreadRef,
    messages: readonly MemoryMessage[],
    options?: CallOptions,
  ): Promise<void>;
  /** Which of these client message ids are already stored in the thread. */
  findWritten(
    thread: ThreadRef,
    clientMessageIds: readonly string[],
    options?: CallOptions,
  ): Promise<Set<string>>;
  /** The thread's most recent messages, oldest first. */
  recentMessages(
    thread: ThreadRef,
    limit: number,
    options?: CallOptions,
  ): Promise<ContextMessage[]>;
  /**
   * Memory context for the thread. `messages` caps the recent messages returned with it (default
   * 20); 0 asks for the context alone, which spares a call where the store keeps them apart.
   */
  getContext(thread: ThreadRef, options?: ContextOptions): Promise<MemoryContext>;
  /** Erases the user with all their threads and messages. */
  eraseUser(user: UserRef, options?: CallOptions): Promise<void>;
}
