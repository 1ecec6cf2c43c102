// A CPU profile of a running Node process over the inspector protocol, for benchmarks that want to see
// where a long-lived process spends its time during one window only (`--cpu-prof` covers a whole run and
// is written only at a clean exit). The process must have been started with `--inspect=127.0.0.1:PORT`.
// The profile is written as a `.cpuprofile` file, which Chrome DevTools and speedscope open.
import { writeFile } from 'node:fs/promises';

interface Target {
  webSocketDebuggerUrl: string;
}

/** Profiles the process behind the inspector at `port` while `during` runs, and writes the profile to `file`. */
export async function profileWindow(port: number, file: string, during: () => Promise<void>): Promise<void> {
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Target[];
  if (!target) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`inspector on port ${port} refused the connection`)), { once: true });
  });
  let nextId = 0;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
    const p = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  });
  const call = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call('Profiler.enable');
    // 1 ms sampling: fine enough for work that costs milliseconds, cheap enough not to become the idle CPU.
    await call('Profiler.setSamplingInterval', { interval: 1000 });
    await call('Profiler.start');
    await during();
    const { profile } = (await call('Profiler.stop')) as { profile: unknown };
    await writeFile(file, JSON.stringify(profile));
  } finally {
    ws.close();
  }
}
