import { redactDeep, setProperty } from '@memfleet/redaction/redact-deep';
import { Writable } from 'node:stream';
import { createLogger as createWinstonLogger, format, transports, type Logger } from 'winston';

export type { Logger } from 'winston';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Name of the process or component, written as `service` on every line. */
  service: string;
  /**
   * Lowest npm log level that is written (`error`, `warn`, `info`, `http`, `verbose`, `debug`,
   * `silly`).
   * @defaultValue `'info'`
   */
  level?: string;
  /**
   * Where the JSON lines go.
   * @defaultValue `process.stdout`
   */
  stream?: NodeJS.WritableStream;
}

// Same symbols as the `triple-beam` constants winston uses internally.
const LEVEL = Symbol.for('level');
const MESSAGE = Symbol.for('message');

/** Fields the line format writes first, in this order, whatever the meta holds. */
const HEAD_FIELDS = new Set(['timestamp', 'level', 'service', 'message']);

/**
 * Creates a winston logger that writes one JSON object per line: `timestamp`, `level`, `service`,
 * `message`, then the meta fields.
 *
 * The message and every meta value go through `redactDeep`, so no email address, phone number or
 * card number reaches a log line, and `Error`s anywhere in the meta are written as
 * `{ name, message, stack }`. `logger.child({ requestId })` adds fields to every line as usual.
 */
export function createLogger(options: LoggerOptions): Logger {
  // winston runs the formats of every line before its transports drop the lines below the level:
  // dropping them first spares them the redaction and the JSON rendering.
  const belowLevel = format((info) =>
    logger.isLevelEnabled(String((info as Record<symbol, unknown>)[LEVEL])) ? info : false,
  );
  const logger: Logger = createWinstonLogger({
    level: options.level ?? 'info',
    defaultMeta: { service: options.service },
    // `splat` first so that `logger.info('user %s', email)` is interpolated before redaction.
    format: format.combine(belowLevel(), format.splat(), redactedJsonLine()),
    transports: [
      // winston types its transports as interfaces extending the `Transport` class, which this
      // rule cannot tell apart from look-alike objects; it is a real winston-transport instance.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
      new transports.Stream({ stream: linesPerTurn(options.stream ?? process.stdout) }),
    ],
  });
  return logger;
}

/**
 * A stream that hands `out` the lines written during one event-loop turn in one write: a worker
 * logs a line per batch, and on a busy worker one write per line is a system call per line.
 * Nothing waits longer than the current turn.
 */
function linesPerTurn(out: NodeJS.WritableStream): Writable {
  const lines = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      out.write(chunk);
      callback();
    },
    writev(chunks, callback) {
      out.write(chunks.map((c) => String(c.chunk)).join(''));
      callback();
    },
  });
  let corked = false;
  const write = lines.write.bind(lines);
  lines.write = ((...args: Parameters<Writable['write']>) => {
    if (!corked) {
      corked = true;
      lines.cork();
      process.nextTick(() => {
        corked = false;
        lines.uncork();
      });
    }
    return write(...args);
  }) as Writable['write'];
  return lines;
}

/**
 * Replaces the info object with a redacted copy and renders it as the JSON line. Returning a new
 * object (without the raw `splat` arguments) means no later format or transport can see the
 * unredacted values either.
 */
const redactedJsonLine = format((info) => {
  const fields: Record<string, unknown> = {};
  // `logger.error(err)` passes the Error itself as the info object; its message and stack are
  // not enumerable, so they would otherwise be lost.
  if (info instanceof Error) {
    fields.message = info.message;
    fields.stack = info.stack;
    if (info.cause !== undefined) fields.cause = info.cause;
  }
  for (const key of Object.keys(info)) {
    if (key !== 'level' && key !== 'timestamp') setProperty(fields, key, info[key]);
  }
  const redacted = redactDeep(fields).value as Record<string, unknown>;

  const line: Record<string, unknown> = {
    timestamp: new Date().toISOString(),
    level: info.level,
    service: redacted.service,
    message: redacted.message ?? '',
  };
  for (const [key, value] of Object.entries(redacted)) {
    if (!HEAD_FIELDS.has(key)) setProperty(line, key, value);
  }
  return {
    ...line,
    level: info.level,
    message: line.message,
    [LEVEL]: info[LEVEL],
    [MESSAGE]: JSON.stringify(line, jsonReplacer),
  };
});

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
