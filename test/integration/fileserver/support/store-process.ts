// A store in a process of its own, for tests that need a second process or a kill -9:
//   node store-process.ts <data dir> hold     open the store, print "open", wait to be killed
//   node store-process.ts <data dir> write    open, then write files one after another for ever, printing
//                                            "acked <path> <sha256>" as each write resolves
// A third argument sets the reserved space in bytes (none by default).
// An open that fails prints "error <message>" and exits 1.
import { hash } from 'node:crypto';
import { pino } from 'pino';
import { Store } from '../../../../fileserver/src/store/store.ts';
import { HybridClock } from '../../../../fileserver/src/store/version.ts';

const [dataDir, mode, reserve = '0'] = process.argv.slice(2);
let store: Store;
try {
  store = await Store.open({
    dataDir: dataDir!,
    clock: new HybridClock('n1'),
    logger: pino({ level: 'silent' }),
    initialPeers: { generation: 1, peers: [{ id: 'p1', url: 'http://127.0.0.1:1' }] },
    reserveBytes: Number(reserve),
  });
} catch (err) {
  process.stdout.write(`error ${(err as Error).message}\n`);
  process.exit(1);
}
process.stdout.write('open\n');
if (mode === 'write') {
  // Several writes in flight at once, small and large, so a kill lands inside group commits and object writes.
  const writer = async (w: number) => {
    for (let i = 0; ; i++) {
      const size = i % 7 === 0 ? 70_000 + w : 50 + ((i * 31) % 3000);
      const body = Buffer.alloc(size, (w * 31 + i) % 256);
      const path = `w${w}/${i}`;
      await store.put(path, [body], size, { contentType: 'a/b' });
      process.stdout.write(`acked ${path} ${hash('sha256', body)}\n`);
    }
  };
  await Promise.all([0, 1, 2, 3].map(writer));
} else {
  setInterval(() => undefined, 1 << 30);
}
