// The machinery the HTTP emulators (zep-emulator.ts, mem0-emulator.ts) share: request records,
// scripted faults, timers that close() clears, and a plain `node:http` server whose sockets can be
// destroyed and whose answers can be held back.
import {
  createServer,
  STATUS_CODES,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { toError } from '@memfleet/errors/to-error';

/** One request the emulator received. */
export interface RequestRecord {
  /** `Date.now()` when the request arrived. */
  arrivedAt: number;
  /** `Date.now()` when the answer was sent; undefined if the connection was dropped. */
  answeredAt?: number;
  method: string;
  /** The request path, without query, as the emulator matches it (e.g. below /api/v2 for Zep). */
  path: string;
  /** Undefined when the connection was dropped (by a fault, or by the client before the answer). */
  status?: number;
  /** The kind of the fault rule that applied to this request, if any. */
  fault?: FaultRule['kind'];
}

/** A scripted fault; see the emulators' `inject`. */
export type FaultRule = {
  /** Which requests the rule applies to; all when omitted. path is matched against {@link RequestRecord.path}. */
  match?: { method?: string; path?: RegExp };
  /** How many matching requests it applies to; default 1; Infinity allowed. */
  times?: number;
} & (
  | {
      kind: 'status';
      status: number;
      /** Default: the emulator's error JSON with the status text; a body that is not JSON is sent as text/plain. */
      body?: string;
      headers?: Record<string, string>;
      /** 'before': answer the error without storing (default). 'after': perform the request normally (store), then answer the error status instead. */
      commit?: 'before' | 'after';
    }
  /** 429 in the emulated service's words, with Retry-After and X-RateLimit-* headers; nothing stored. */
  | { kind: 'rate_limit'; retryAfterS: number }
  /** 'before' (default): store at once, answer after ms. 'after': wait ms, then store and answer. */
  | { kind: 'delay'; ms: number; commit?: 'before' | 'after' }
  /** Destroy the socket without answering; 'after' = store first; default 'before' = nothing stored. */
  | { kind: 'drop'; commit?: 'before' | 'after' }
  /** Perform the request (store), await run(), then answer normally (500 if run throws). */
  | { kind: 'hook'; run: (req: RequestRecord) => Promise<void> }
);

/** A complete HTTP answer, computed before it is sent (or held back, or dropped). */
export interface Answer {
  status: number;
  headers: OutgoingHttpHeaders;
  body: string;
}

export const TEXT_TYPE = 'text/plain; charset=utf-8';

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An answer with `value` as its JSON body, of the emulator's JSON content type. */
export function answerJson(contentType: string, status: number, value: unknown): Answer {
  return { status, headers: { 'content-type': contentType }, body: JSON.stringify(value) };
}

/** A percent-decoded path segment; the raw segment when it is not valid percent-encoding. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

// ---- timers ----

/** Every timer the emulator arms, so that close() can clear them all. */
export class Timers {
  private closed = false;
  private readonly pending = new Set<{ timer: NodeJS.Timeout; settle: (ran: boolean) => void }>();

  /** Resolves true after `ms`, or false (at once) if closed first. */
  wait(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.pending.delete(entry);
          resolve(true);
        }, ms),
        settle: resolve,
      };
      this.pending.add(entry);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    for (const entry of this.pending) {
      clearTimeout(entry.timer);
      entry.settle(false);
    }
    this.pending.clear();
  }
}

// ---- faults ----

interface FaultEntry {
  rule: FaultRule;
  left: number;
}

/** The first rule with times left whose match fits; spends one of its times. */
function takeFault(entries: FaultEntry[], method: string, path: string): FaultRule | undefined {
  for (const entry of entries) {
    if (entry.left <= 0) continue;
    const { match } = entry.rule;
    if (match?.method !== undefined && match.method.toUpperCase() !== method) continue;
    // search() ignores and keeps lastIndex, so a /g regex behaves the same every time.
    if (match?.path !== undefined && path.search(match.path) === -1) continue;
    entry.left -= 1;
    return entry.rule;
  }
  return undefined;
}

function statusFaultAnswer(
  rule: Extract<FaultRule, { kind: 'status' }>,
  jsonType: string,
  defaultBody: (status: number) => unknown,
): Answer {
  let { body } = rule;
  let contentType = jsonType;
  if (body === undefined) {
    body = JSON.stringify(defaultBody(rule.status));
  } else {
    try {
      JSON.parse(body);
    } catch {
      contentType = TEXT_TYPE;
    }
  }
  const headers: OutgoingHttpHeaders = { 'content-type': contentType };
  for (const [key, value] of Object.entries(rule.headers ?? {})) {
    headers[key.toLowerCase()] = value;
  }
  return { status: rule.status, headers, body };
}

/** The reason phrase of an HTTP status, `'error'` for an unknown one. */
export const statusText = (status: number): string => STATUS_CODES[status] ?? 'error';

// ---- the server ----

/** The body as text, or undefined if the client went away before sending all of it. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
    req.on('close', () => {
      if (!req.complete) resolve(undefined);
    });
  });
}

/** A request as it arrives, before its body is read. */
export interface Arrival {
  arrivedAt: number;
  /** Upper case. */
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  /** Whether `key` is accepted, asked when the request is performed (keys may change meanwhile). */
  hasApiKey: (key: string) => boolean;
}

/** What an emulator makes of an arriving request. */
export interface Accepted {
  /** The path to record and to match fault rules against. */
  path: string;
  /** What the request gets when no fault intervenes, once its body is read; may store. */
  perform: (text: string) => Answer;
}

/** The options every emulator takes. */
export interface EmulatorListenOptions {
  /** Accepted API keys. */
  apiKeys?: string[];
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** Port to listen on. Default `0` (ephemeral). */
  port?: number;
}

/** What {@link startEmulatorServer} needs of an emulator. */
export interface EmulatorSpec {
  /** The starter's name, for errors, e.g. 'startZepEmulator'. */
  name: string;
  /** The API key accepted when the options name none. */
  defaultApiKey: string;
  /** The content type of JSON answers. */
  jsonType: string;
  timers: Timers;
  /** Called on arrival, in arrival order, before the body is read and a fault rule is chosen. */
  accept: (arrival: Arrival) => Accepted;
  /** The JSON body of a 'status' fault that gives none. */
  statusFaultBody: (status: number) => unknown;
  /** The JSON body of a 500 the emulator answers itself (a failed hook, a bug of the emulator). */
  errorBody: (message: string) => unknown;
  /** The answer of a 'rate_limit' fault. */
  rateLimitAnswer: (retryAfterS: number) => Answer;
  /** Headers every answer sent carries, under the answer's own. */
  commonHeaders?: () => OutgoingHttpHeaders;
}

/** A running emulator server. */
export interface EmulatorServer {
  /** 'http://<host>:<port>', with an IPv6 host in brackets. */
  readonly origin: string;
  /** The part of the emulator's API every emulator has. */
  readonly api: EmulatorApi;
}

/** What every running emulator offers its tests. */
export interface EmulatorApi {
  readonly port: number;
  /** Every request received, in arrival order. */
  readonly requests: readonly RequestRecord[];
  /** Adds a fault rule; rules are consulted in insertion order, the first matching rule with times left applies. */
  inject(rule: FaultRule): void;
  clearFaults(): void;
  setApiKeys(keys: string[]): void;
  /** Stops listening, destroys open connections and clears every timer the emulator armed. */
  close(): Promise<void>;
}

/**
 * Listens on `listen.host`/`listen.port` and answers each request with what `emulator.accept`
 * makes of it, unless a fault rule decided on arrival intervenes.
 */
export async function startEmulatorServer(
  listen: EmulatorListenOptions,
  emulator: EmulatorSpec,
): Promise<EmulatorServer> {
  const { timers, jsonType } = emulator;
  const host = listen.host ?? '127.0.0.1';
  const jsonAnswer = (status: number, value: unknown): Answer =>
    answerJson(jsonType, status, value);
  let apiKeys = new Set(listen.apiKeys ?? [emulator.defaultApiKey]);
  const hasApiKey = (key: string): boolean => apiKeys.has(key);
  let faults: FaultEntry[] = [];
  const requests: RequestRecord[] = [];

  const send = (res: ServerResponse, record: RequestRecord, answer: Answer): void => {
    if (res.headersSent || res.destroyed || res.socket === null || res.socket.destroyed) return;
    res.writeHead(answer.status, {
      ...emulator.commonHeaders?.(),
      ...answer.headers,
      'content-length': Buffer.byteLength(answer.body),
    });
    res.end(answer.body);
    record.status = answer.status;
    record.answeredAt = Date.now();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrivedAt = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const { headers } = req;
    const { path, perform } = emulator.accept({ arrivedAt, method, url, headers, hasApiKey });
    const record: RequestRecord = { arrivedAt, method, path };
    requests.push(record);
    // Faults are decided on arrival, so concurrent requests get them in order.
    const fault = takeFault(faults, method, record.path);
    if (fault) record.fault = fault.kind;

    const text = await readBody(req);
    if (text === undefined || timers.isClosed) return;

    switch (fault?.kind) {
      case undefined:
        send(res, record, perform(text));
        return;
      case 'status':
        if (fault.commit === 'after') perform(text);
        send(res, record, statusFaultAnswer(fault, jsonType, emulator.statusFaultBody));
        return;
      case 'rate_limit':
        send(res, record, emulator.rateLimitAnswer(fault.retryAfterS));
        return;
      case 'delay':
        if (fault.commit === 'after') {
          // The write lands once the wait is over, even if the client has given up by then.
          if (await timers.wait(fault.ms)) send(res, record, perform(text));
        } else {
          const answer = perform(text);
          if (await timers.wait(fault.ms)) send(res, record, answer);
        }
        return;
      case 'drop':
        if (fault.commit === 'after') perform(text);
        req.socket.destroy();
        return;
      case 'hook': {
        const answer = perform(text);
        try {
          await fault.run(record);
        } catch (err: unknown) {
          const message = `emulator hook failed: ${toError(err).message}`;
          send(res, record, jsonAnswer(500, emulator.errorBody(message)));
          return;
        }
        send(res, record, answer);
        return;
      }
    }
  };

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only a bug of the emulator gets here; say so rather than hang the client.
      if (res.headersSent || res.destroyed) return;
      const message = `emulator error: ${toError(err).message}`;
      const answer = jsonAnswer(500, emulator.errorBody(message));
      res.writeHead(answer.status, answer.headers).end(answer.body);
    });
  });
  server.on('connection', (socket) => {
    // Clients keep connections alive between requests; those idle server sockets belong to the
    // emulator, not to the test that made the request, and close() ends them.
    socket.unref();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: listen.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') {
    server.close();
    throw new Error(`${emulator.name}: the server has no TCP address`);
  }
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    origin: `http://${urlHost}:${address.port}`,
    api: {
      port: address.port,
      requests,
      inject: (rule) => {
        const times = rule.times ?? 1;
        if (!(times >= 0)) throw new Error(`inject: times must be >= 0, got ${times}`);
        faults.push({ rule, left: times });
      },
      clearFaults: () => {
        faults = [];
      },
      setApiKeys: (keys) => {
        apiKeys = new Set(keys);
      },
      close: () => {
        closing ??= new Promise<void>((resolve, reject) => {
          timers.close();
          server.close((err) => {
            if (err) reject(err);
            else resolve();
          });
          for (const socket of sockets) socket.destroy();
        });
        return closing;
      },
    },
  };
}
