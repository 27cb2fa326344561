export { watchTask, watchTasks, WatchTaskError, TASK_STATUSES, type WatchedTask, type WatchedStage, type WatchedStatus, type WatchTaskOptions, type WatchTasksFilter } from './watch-task.js';
export { fireflowApi, ApiCallError, type FireflowApi, type FireflowApiOptions, type ApiTask, type AudioResults, type StartedProcessing, type UploadOptions, type UploadProgress } from './api.js';
export { connectClient, fetchClientConfig, SignInError, type ClientConfig, type Connected } from './connect.js';
export { clock, orderedStages, resultsMarkdown } from './format.js';
