// Fault injection, loaded into a file-server process with `--import`: shifts its wall clock
// (Date.now and new Date()) by FC_FAULT_CLOCK_OFFSET_MS, as a node whose clock is wrong would see it.
const offset = Number(process.env.FC_FAULT_CLOCK_OFFSET_MS);
if (!Number.isFinite(offset)) throw new Error(`FC_FAULT_CLOCK_OFFSET_MS must be a number, got ${process.env.FC_FAULT_CLOCK_OFFSET_MS}`);
const realNow = Date.now;
const RealDate = Date;
Date.now = () => realNow() + offset;
globalThis.Date = class extends RealDate {
  constructor(...args: ConstructorParameters<DateConstructor> | []) {
    if (args.length === 0) super(realNow() + offset);
    else super(...(args as ConstructorParameters<DateConstructor>));
  }
} as DateConstructor;
