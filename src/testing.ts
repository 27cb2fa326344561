// fireflow/testing: unit-testing handlers without Firestore or an executor.
export { createTestContext, type TestContext } from './core/context.js';
export { recordingLogger, type RecordedLog } from './core/logger.js';
