// Preloaded (`node --require`) wherever Spillway starts: `npm start`, the tests' processes and
// the bench's. libuv sizes its thread pool once, from UV_THREADPOOL_SIZE, when the pool first
// starts, and an ES module entry (tsx's loader too) is read through that pool: only code
// that runs before it can still set the size. @duckdb/node-api holds a pool thread for each
// statement until the statement ends, so with libuv's default of 4, four bulk runs' COPYs
// left every other statement of the process waiting behind them (an Ingest of 10 rows for
// 17 s; README "Configuration"). A value in the environment wins.
process.env.UV_THREADPOOL_SIZE ??= "16";
