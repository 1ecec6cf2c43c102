// Entry point. File I/O runs on libuv's thread pool; its default of 4 threads is too few for many
// concurrent writes plus fsyncs, and the size is fixed when the pool is first used, so it is set before
// anything else loads.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('./server.ts');
