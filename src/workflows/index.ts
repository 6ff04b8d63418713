/** Workflows (docs/workflows.md): a task runs once several named events of one session happened. */
export * from './config';
export * from './errors';
export * from './hooks';
export * from './inspect';
export * from './keys';
export * from './merge';
export * from './model';
export * from './operations';
export * from './queue';
export * from './runner';
export * from './store';
