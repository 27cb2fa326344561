import winston from 'winston';

/** Cloud Logging's severity names for winston's npm levels. */
const SEVERITY: Record<string, string> = {
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
export const cloudLoggingFormat = winston.format((info) => {
  info.severity = SEVERITY[info.level] ?? 'DEFAULT';
  return info;
});

export type Logger = winston.Logger;

/**
 * The library's default logger: JSON lines on stderr (stdout stays free for a program's own output, e.g. benchmark
 * results). Level from `FIREFLOW_LOG_LEVEL`. @default 'info'
 */
export function createLogger(options: { level?: string; silent?: boolean } = {}): Logger {
  return winston.createLogger({
    level: options.level ?? process.env.FIREFLOW_LOG_LEVEL ?? 'info',
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), cloudLoggingFormat(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(SEVERITY) })],
  });
}
