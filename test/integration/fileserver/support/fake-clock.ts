// FAULT INJECTION, test only: a node whose wall clock is wrong. Preloaded into a file-server process
// (`NODE_OPTIONS=--import=<this file>`, see `skewedClockEnv`), it shifts `Date.now`, which every clock
// reading of the server goes through, by FAKE_CLOCK_OFFSET_MS. The server itself has no switch for this.
const offsetMs = Number(process.env['FAKE_CLOCK_OFFSET_MS'] ?? '0');
if (!Number.isFinite(offsetMs)) throw new Error(`FAKE_CLOCK_OFFSET_MS is not a number: ${process.env['FAKE_CLOCK_OFFSET_MS']}`);
const realNow = Date.now;
Date.now = () => realNow() + offsetMs;
