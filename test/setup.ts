// Loaded by mocha before any test module: unit tests log nothing unless LOG_LEVEL asks for it.
// (Spawned CLI processes get their own LOG_LEVEL from the test harness.)
process.env.LOG_LEVEL ??= 'silent';
