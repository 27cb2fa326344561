import winston from 'winston';

/** Fields of a log entry: Cloud Logging shows them as `jsonPayload` fields. */
export type LogFields = Record<string, unknown>;

/**
 * Where fireflow logs. Four levels and `child`, nothing else, so any logging library fits behind it (a winston logger
 * does as it is; `createLogger()` is one). Handlers get one on `ctx.log`, carrying taskId, type and attempt.
 */
export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every entry. */
  child(fields: LogFields): Logger;
}

/** Cloud Logging's severity names for winston's npm levels. */
export const SEVERITY: Readonly<Record<string, string>> = {
  error: 'ERROR',
  warn: 'WARNING',
  info: 'INFO',
  http: 'INFO',
  verbose: 'DEBUG',
  debug: 'DEBUG',
  silly: 'DEBUG',
};

/**
 * One JSON object per line in the shape Cloud Logging parses from stdout/stderr (`severity`, `message`, the rest
 * as `jsonPayload` fields), so the same logs are structured locally and in Cloud Functions.
 */
const cloudLoggingFormat = winston.format((info) => {
  info.severity = SEVERITY[info.level] ?? 'DEFAULT';
  return info;
});

/**
 * The library's default logger (winston): JSON lines on stderr (stdout stays free for a program's own output, e.g.
 * benchmark results). Level from `FIREFLOW_LOG_LEVEL`. @default level 'info'
 */
export function createLogger(options: { level?: string; silent?: boolean } = {}): Logger {
  return winston.createLogger({
    level: options.level ?? process.env.FIREFLOW_LOG_LEVEL ?? 'info',
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), cloudLoggingFormat(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(SEVERITY) })],
  });
}

/** An entry as `recordingLogger` keeps it: Cloud Logging's shape. */
export interface RecordedLog {
  severity: string;
  message: string;
  [key: string]: unknown;
}

/** A logger that appends every entry to `sink` (tests, `createTestContext`). */
export function recordingLogger(sink: RecordedLog[], fields: LogFields = {}): Logger {
  const at = (level: string) => (message: string, extra?: LogFields) => void sink.push({ ...fields, ...extra, message, severity: SEVERITY[level]! });
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (more) => recordingLogger(sink, { ...fields, ...more }) };
}
