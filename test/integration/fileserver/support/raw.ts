import net from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends bytes exactly as given (no URL normalisation, any header), for requests that fetch() would
 * refuse or rewrite, and reads the answer until the server closes or the declared length arrives.
 */
export function rawRequest(host: string, port: number, request: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw request timed out'));
    }, timeoutMs);
    const tryParse = (final: boolean) => {
      const buf = Buffer.concat(chunks);
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return final ? reject(new Error(`no HTTP answer: ${buf.toString()}`)) : undefined;
      const lines = buf.subarray(0, head).toString().split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = buf.subarray(head + 4);
      const len = headers['content-length'];
      if (final || (len !== undefined && body.length >= Number(len))) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status, headers, body: body.toString() });
      }
    };
    socket.on('data', (d) => {
      chunks.push(d);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('error', (err) => {
      if (chunks.length > 0) tryParse(true);
      else {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.write(request);
  });
}
