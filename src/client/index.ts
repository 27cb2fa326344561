export { watchTask, WatchTaskError, TASK_STATUSES, type WatchedTask, type WatchedStage, type WatchedStatus, type WatchTaskOptions } from './watch-task.js';
