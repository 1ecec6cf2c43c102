// The entry point: client-node's generated code is kept out before anything imports client-node
// (see client-node-hooks.ts), then the operator starts.
import { installClientNodeHooks } from './runtime/client-node-hooks.ts';

installClientNodeHooks();
await import('./start.ts');
