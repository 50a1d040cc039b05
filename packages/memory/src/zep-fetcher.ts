import type { ZepClient } from '@getzep/zep-cloud';
import { Agent, errors, request, type Dispatcher } from 'undici';

/** The SDK's transport hook: it builds the request, this sends it and reads the answer. */
export type ZepFetchFunction = NonNullable<
  NonNullable<ConstructorParameters<typeof ZepClient>[0]>['fetcher']
>;
type FetchArgs = Parameters<ZepFetchFunction>[0];
type FetchResult = Awaited<ReturnType<ZepFetchFunction>>;
type RawResponse = FetchResult['rawResponse'];

/** A {@link ZepFetchFunction} and the connection pool behind it. */
export interface ZepFetcher {
  fetcher: ZepFetchFunction;
  /** Closes the pool's connections; calls in flight are aborted. */
  close(): Promise<void>;
}

const JSON_TYPES = /^application\/(?:.+\+)?json$|^text\/json$/;

/**
 * The Zep SDK's transport on undici's `request` over a keep-alive pool, in place of the SDK's
 * default, the global `fetch`, which builds WHATWG request, response and stream objects and two
 * abort signals for each call. The answers are the SDK's own: a body parsed as JSON on 2xx/3xx,
 * `status-code` errors with the parsed body, `non-json`, `timeout` (the SDK's `timeoutMs`), and
 * `unknown` for an abort ("The user aborted a request", as the SDK words it) or a network failure.
 * It never retries (memfleet's queue owns retries, and the backend passes `maxRetries: 0`) and
 * does not follow redirects, which the Zep API does not send. The pool has no connection cap, as
 * with `fetch`, so every drain slot (`WORKER_CONCURRENCY`) and every read can have its call in
 * flight; an idle connection closes after undici's default 4 s.
 */
export function createZepFetcher(): ZepFetcher {
  const dispatcher = new Agent();

  async function fetcher(args: FetchArgs): Promise<FetchResult> {
    let body: string | undefined;
    const headers: Record<string, string> = {};
    if (args.body !== undefined) {
      if (args.requestType !== undefined && args.requestType !== 'json') {
        return unknown(`request body type ${args.requestType} is not supported by this transport`);
      }
      body = JSON.stringify(args.body);
      headers['content-type'] = args.contentType ?? 'application/json';
    }
    for (const [name, value] of Object.entries(args.headers ?? {})) {
      // Most are plain strings: only a supplier or a promise is awaited.
      const v: string | undefined =
        typeof value === 'string'
          ? value
          : typeof value === 'function'
            ? await value()
            : await value;
      if (v !== undefined) headers[name.toLowerCase()] = v;
    }
    const timeoutMs = args.timeoutMs ?? 60_000;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(withQuery(args.url, args.queryParameters), {
        dispatcher,
        method: args.method as Dispatcher.HttpMethod,
        headers,
        body,
        signal: args.abortSignal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err: unknown) {
      return failure(err, args.abortSignal);
    }
    const raw = rawResponse(res, args.url);
    let text: string;
    try {
      text = await res.body.text();
    } catch (err: unknown) {
      return failure(err, args.abortSignal);
    }
    if (res.statusCode >= 200 && res.statusCode < 400) {
      if (args.responseType === 'text') return { ok: true, body: text, rawResponse: raw };
      if (text.length === 0) return { ok: true, body: undefined, rawResponse: raw };
      try {
        return { ok: true, body: JSON.parse(text) as unknown, rawResponse: raw };
      } catch {
        return {
          ok: false,
          error: { reason: 'non-json', statusCode: res.statusCode, rawBody: text },
          rawResponse: raw,
        };
      }
    }
    const contentType = raw.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
    let errorBody: unknown = text;
    if ((contentType === '' || JSON_TYPES.test(contentType)) && text.length > 0) {
      try {
        errorBody = JSON.parse(text) as unknown;
      } catch {
        errorBody = text;
      }
    }
    return {
      ok: false,
      error: { reason: 'status-code', statusCode: res.statusCode, body: errorBody },
      rawResponse: raw,
    };
  }

  return {
    fetcher: fetcher as ZepFetchFunction,
    close: () => dispatcher.close(),
  };
}

/** Appends the query: arrays repeat their key, objects nest as `key[sub]`, null is left out. */
export function withQuery(url: string, query: FetchArgs['queryParameters']): string {
  if (query === undefined) return url;
  const params = new URLSearchParams();
  const add = (key: string, value: unknown): void => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      for (const v of value) add(key, v);
    } else if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) add(`${key}[${k}]`, v);
    } else if (
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean'
    ) {
      params.append(key, String(value));
    }
  };
  for (const [key, value] of Object.entries(query)) add(key, value);
  const qs = params.toString();
  return qs === '' ? url : `${url}${url.includes('?') ? '&' : '?'}${qs}`;
}

/**
 * The SDK's raw response. Its `Headers` are built when first read (a 429's `retry-after`, or a
 * caller asking for the raw response): a `Headers` checks every name and value it is given, and
 * a write's answer is otherwise never looked at.
 */
function rawResponse(res: Dispatcher.ResponseData, url: string): RawResponse {
  let headers: Headers | undefined;
  return {
    get headers(): Headers {
      if (headers === undefined) {
        headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (Array.isArray(value)) for (const v of value) headers.append(name, v);
          else if (value !== undefined) headers.set(name, value);
        }
      }
      return headers;
    },
    redirected: false,
    status: res.statusCode,
    statusText: '',
    type: 'basic',
    url,
  };
}

const noResponse = (status: number, statusText: string): RawResponse => ({
  headers: new Headers(),
  redirected: false,
  status,
  statusText,
  type: 'error',
  url: '',
});

function unknown(errorMessage: string, status = 0): FetchResult {
  return {
    ok: false,
    error: { reason: 'unknown', errorMessage },
    rawResponse: noResponse(status, status === 0 ? 'Unknown Error' : 'Client Closed Request'),
  };
}

function failure(err: unknown, signal: AbortSignal | undefined): FetchResult {
  if (signal?.aborted === true) return unknown('The user aborted a request', 499);
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
    return { ok: false, error: { reason: 'timeout' }, rawResponse: noResponse(499, 'Timeout') };
  }
  return unknown(err instanceof Error ? err.message : String(err));
}
