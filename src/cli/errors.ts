// The CLI's outcomes and their exit codes, mapped once (`exitCodeOf`); `fireflow help` lists the same table.
import { ApiCallError } from '../client/api.js';
import { SignInError } from '../client/connect.js';
import { WatchTaskError } from '../client/watch-task.js';
import { UnsafeListenError } from '../api/server.js';
import { UnsafeWorkerError } from '../worker/server.js';
import { sharedIdentity } from '../core/errors.js';

/** A mistake in the command line or its input: wrong arguments, a missing or non-audio file. Exit 2. */
export class BadInputError extends Error {
  override name = 'BadInputError';
}

/** Ctrl-C: the task (if one was started) was cancelled. Exit 130, as shells report an interrupted command. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
  constructor(readonly taskId: string | undefined) {
    super(taskId ? `interrupted; task ${taskId} was cancelled` : 'interrupted');
  }
}

export const EXIT = {
  ok: 0,
  /** The task failed or was cancelled, or something unexpected went wrong. */
  failed: 1,
  badInput: 2,
  /** No server, emulators or sign-in: nothing was done. */
  unreachable: 3,
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `exit codes:
  0    done (process: the task completed)
  1    the task failed or was cancelled elsewhere, or an unexpected error
  2    bad input: unknown command or option, a file that is missing or not audio, a request the API refused (4xx)
  3    the server, the emulators or sign-in could not be reached
  130  interrupted by Ctrl-C (a running task was cancelled first)`;

export function exitCodeOf(error: unknown): number {
  if (error instanceof InterruptedError) return EXIT.interrupted;
  if (error instanceof BadInputError || error instanceof UnsafeListenError || error instanceof UnsafeWorkerError) return EXIT.badInput;
  if (error instanceof SignInError) return EXIT.unreachable;
  if (error instanceof WatchTaskError) return error.code === 'unavailable' ? EXIT.unreachable : EXIT.failed;
  if (error instanceof ApiCallError) {
    if (error.status === 0 || error.status === 401 || error.status === 503) return EXIT.unreachable;
    if (error.status >= 400 && error.status < 500) return EXIT.badInput;
  }
  return EXIT.failed;
}

sharedIdentity(BadInputError, 'BadInputError');
sharedIdentity(InterruptedError, 'InterruptedError');
