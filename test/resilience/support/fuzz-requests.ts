// fast-check arbitraries for raw HTTP requests to a file server: every route, well-formed and not.
// Valid peer URLs come only from the context (the target itself and closed loopback ports), so no
// generated peer list makes the server send traffic anywhere else.
import { createHash } from 'node:crypto';
import fc from 'fast-check';

export interface FuzzContext {
  selfId: string;
  token: string;
  /** The only URLs a generated peer list may name that parse as http(s). */
  peerUrls: string[];
}

export interface FuzzRequest {
  method: string;
  target: string;
  bytes: Buffer;
  /** The write asked for majority/all acknowledgements (a 504 ack_timeout is then a legitimate answer). */
  asksPeerAcks: boolean;
  /** A write with If-Match or If-None-Match: it goes through the path's owner, which may be a closed port or change mid-request. */
  conditional: boolean;
  /** A method no route implements (a 501 is then the legitimate answer). */
  unknownMethod: boolean;
}

const ROUTED_METHODS = ['HEAD', 'OPTIONS', 'GET', 'PUT', 'PATCH', 'POST', 'DELETE'];
const ACK_HEADER = 'x-filecluster-ack';

// Built once: compiling a stringMatching arbitrary costs milliseconds.
const hex4 = fc.stringMatching(/^[0-9a-f]{4}$/);
const hex12 = fc.stringMatching(/^[0-9a-f]{12}$/);
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$/);
const anyText = fc.string({ unit: 'binary', maxLength: 40 });

/** Path segments as they appear in a URL: normal names, traversal spellings, bad encodings, long names. */
const urlSegment = fc.oneof(
  { weight: 6, arbitrary: name },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '',
      '%2e%2e',
      '%2E%2e',
      '%2e',
      '.%2e',
      '..%2f..',
      '%2f',
      '%2F',
      '%5c',
      '..\\..',
      '%00',
      '%',
      '%zz',
      '%c0%ae%c0%ae',
      '%ff',
      '%ed%a0%80',
      '%e2%80%ae',
      '%F0%9F%98%80',
      '~',
      '*',
      ';',
      ':',
      'CON',
      'a:b',
      '%20',
      '%0d%0a',
      '%3f',
      '%23',
      'é',
      '\u202e',
    ),
  },
  { weight: 2, arbitrary: anyText.map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 1200 }).map((n) => 'n'.repeat(n)) },
);
const urlPath = fc.array(urlSegment, { minLength: 0, maxLength: 6 }).map((s) => s.join('/'));

/** Paths as decoded strings, the way replication frames and catch-up bodies carry them. */
const storePath = fc.oneof(
  { weight: 5, arbitrary: fc.array(name, { minLength: 1, maxLength: 4 }).map((s) => s.join('/')) },
  {
    weight: 3,
    arbitrary: fc.constantFrom('..', '../x', 'a/../b', '/abs', 'a//b', 'a/./b', 'a\\b', 'a\u0000b', '\ud800', 'é/ü', 'a/', '', 'x'.repeat(300), 'a/'.repeat(600)),
  },
  { weight: 2, arbitrary: anyText },
);

const version = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(hex12, hex4, name).map(([ms, c, n]) => `${ms}${c}-${n}`) },
  { weight: 1, arbitrary: fc.oneof(anyText, fc.constant('0000000000000000-'), fc.constant('ffffffffffffffff-x')) },
);

const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }).map((n) => Buffer.alloc(n, 0x61)) },
);

/** How the body's length is declared; never larger than what is sent, so no request waits for bytes that never come. */
type LengthMode = 'exact' | 'missing' | 'smaller' | 'garbage' | 'duplicate' | 'chunked' | 'huge';
const lengthMode = fc.oneof(
  { weight: 12, arbitrary: fc.constant<LengthMode>('exact') },
  { weight: 1, arbitrary: fc.constantFrom<LengthMode>('missing', 'smaller', 'garbage', 'duplicate', 'chunked', 'huge') },
);

type Header = [string, string];

function commonHeaders(ctx: FuzzContext, payload: Buffer): fc.Arbitrary<Header[]> {
  const headerValue = fc.oneof(
    anyText,
    fc.constant(''),
    fc.integer({ min: 9000, max: 20_000 }).map((n) => 'v'.repeat(n)),
  );
  const candidates: Array<fc.Arbitrary<Header>> = [
    fc
      .oneof(fc.constantFrom('application/json', 'text/plain', 'application/x-filecluster-changes', 'application/octet-stream'), headerValue)
      .map((v) => ['content-type', v]),
    fc.oneof(fc.constant(sha(payload)), hex64, fc.constantFrom('zz', '', sha(payload).toUpperCase()), anyText).map((v) => ['content-sha256', v]),
    fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"', '"a", "b"', ','), anyText).map((v) => ['if-match', v]),
    fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"'), anyText).map((v) => ['if-none-match', v]),
    fc
      .oneof(
        fc.constantFrom('bytes=0-0', 'bytes=-5', 'bytes=5-', 'bytes=99999999999999999999-', 'bytes=1-0', 'bytes=0-1,2-3', 'items=1-2', 'bytes=-0', 'bytes= 1 - 2'),
        anyText,
      )
      .map((v) => ['range', v]),
    fc.oneof(fc.constant('"x"'), anyText).map((v) => ['if-range', v]),
    fc.oneof(fc.constantFrom('local', 'majority', 'all', 'ALL', ''), anyText).map((v) => [ACK_HEADER, v]),
    fc
      .oneof(fc.constantFrom(`Bearer ${ctx.token}`, 'Bearer', `Bearer ${ctx.token}x`, `bearer ${ctx.token}`, 'Basic Zm9vOmJhcg=='), headerValue)
      .map((v) => ['authorization', v]),
    fc.constant<Header>(['x-filecluster-proxied', '1']),
    fc.tuple(headerName, headerValue),
  ];
  const wellFormed: Array<fc.Arbitrary<Header>> = [
    fc.constantFrom('text/plain', 'application/octet-stream', 'image/png').map((v) => ['content-type', v]),
    fc.constant<Header>(['content-sha256', sha(payload)]),
    fc.constantFrom('bytes=0-0', 'bytes=-5', 'bytes=5-').map((v) => ['range', v]),
    fc.constant<Header>([ACK_HEADER, 'local']),
    fc.constant<Header>(['authorization', `Bearer ${ctx.token}`]),
  ];
  const pick = (from: Array<fc.Arbitrary<Header>>): fc.Arbitrary<Header[]> =>
    fc.subarray(from, { maxLength: 4 }).chain((picked): fc.Arbitrary<Header[]> => (picked.length === 0 ? fc.constant([]) : fc.tuple(...picked)));
  return fc.oneof({ weight: 3, arbitrary: fc.constant<Header[]>([]) }, { weight: 2, arbitrary: pick(wellFormed) }, { weight: 3, arbitrary: pick(candidates) });
}

function peerListJson(ctx: FuzzContext): fc.Arbitrary<unknown> {
  const notHttpUrl = fc
    .oneof(fc.constantFrom('ftp://127.0.0.1/x', 'not a url', '', 'http//x', 'file:///etc/passwd', 'javascript:1', 'http://'), anyText)
    .filter((u) => !URL.canParse(u) || !['http:', 'https:'].includes(new URL(u).protocol));
  const peer = fc.record(
    {
      id: fc.oneof(name, fc.constant(ctx.selfId), fc.constantFrom('', '-bad', 'a'.repeat(80), 'ü'), anyText),
      url: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ctx.peerUrls) }, { weight: 1, arbitrary: notHttpUrl }),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record(
        { generation: fc.oneof(fc.nat(50), fc.constantFrom(-1, 1.5, 2 ** 53, '1', null)), peers: fc.array(peer, { maxLength: 4 }) },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: fc.anything() },
  );
}

/** A change stream: frames that are well formed or broken in one of many ways. */
const changeStream: fc.Arbitrary<Buffer> = fc
  .array(
    fc.oneof(
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
      {
        weight: 4,
        arbitrary: fc
          .record({
            path: storePath,
            version,
            deleted: fc.boolean(),
            data: fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
            sizeDelta: fc.constantFrom(0, 0, 0, 1, -1, 1e6),
            shaMode: fc.constantFrom('right', 'right', 'wrong', 'empty'),
            contentType: fc.oneof(fc.constant('text/plain'), anyText),
            lenDelta: fc.constantFrom(0, 0, 0, 0, 1, -1, 0x7fffffff),
          })
          .map((f) => {
            const data = f.deleted ? Buffer.alloc(0) : f.data;
            const header = Buffer.from(
              JSON.stringify({
                path: f.path,
                version: f.version,
                deleted: f.deleted,
                size: Math.max(0, data.length + f.sizeDelta),
                sha256: f.shaMode === 'right' ? sha(data) : f.shaMode === 'wrong' ? sha(Buffer.from('other')) : '',
                contentType: f.contentType,
              }),
            );
            const len = Buffer.alloc(4);
            len.writeUInt32BE(Math.min(0xffffffff, header.length + f.lenDelta));
            return Buffer.concat([len, header, data]);
          }),
      },
    ),
    { maxLength: 4 },
  )
  .map((frames) => Buffer.concat(frames));

interface Shape {
  method: string;
  target: string;
  payload: Buffer;
  extraHeaders: Header[];
}

function shapes(ctx: FuzzContext): fc.Arbitrary<Shape> {
  const method = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'HEAD') },
    { weight: 2, arbitrary: fc.constantFrom('POST', 'PATCH', 'OPTIONS', 'PROPFIND', 'MKCOL', 'TRACE', 'get', 'FOO', 'PUT ') },
  );
  const json = (a: fc.Arbitrary<unknown>) => a.map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
  const authJson: Header[] = [
    ['authorization', `Bearer ${ctx.token}`],
    ['content-type', 'application/json'],
  ];
  const query = fc
    .record(
      {
        prefix: fc.oneof(name, anyText.map(encodeURIComponent), fc.constant('%zz')),
        limit: fc.oneof(fc.constantFrom('0', '-1', '1.5', '10001', 'abc', '', '1e3'), fc.nat(20).map(String)),
        cursor: fc.oneof(fc.base64String({ maxLength: 24 }), anyText.map(encodeURIComponent), fc.constant('YQ')),
        twice: fc.boolean(),
      },
      { requiredKeys: [] },
    )
    .map((q) => {
      const parts = Object.entries(q)
        .filter(([k]) => k !== 'twice')
        .map(([k, v]) => `${k}=${v}`);
      if (q.twice) parts.push('prefix=a', 'prefix=b');
      return parts.length ? `?${parts.join('&')}` : '';
    });
  return fc.oneof(
    // The files API, with every method.
    { weight: 10, arbitrary: fc.record({ method, target: urlPath.map((p) => `/files/${p}`), payload: body, extraHeaders: fc.constant<Header[]>([]) }) },
    // Well-formed writes and reads of a small set of names, so that conditions, ranges and overwrites hit real files.
    {
      weight: 6,
      arbitrary: fc.record({
        method: fc.constantFrom('PUT', 'PUT', 'GET', 'HEAD', 'DELETE'),
        target: fc.constantFrom('a', 'b', 'dir/c', 'dir/sub/d', 'é', '%E2%9C%93').map((p) => `/files/fuzz/${p}`),
        payload: body,
        extraHeaders: fc.constant<Header[]>([]),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        method: fc.constant('GET'),
        target: query.map((q) => `/files${q}`),
        payload: fc.constant(Buffer.alloc(0)),
        extraHeaders: fc.constant<Header[]>([]),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        method: fc.constantFrom('PUT', 'PUT', 'GET', 'POST'),
        target: fc.constant('/internal/peers'),
        payload: json(peerListJson(ctx)),
        extraHeaders: fc.constant(authJson),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        method: fc.constant('POST'),
        target: fc.constant('/internal/manifest'),
        payload: json(fc.oneof(fc.record({ buckets: fc.array(fc.integer({ min: -2, max: 300 }), { maxLength: 20 }) }), fc.anything())),
        extraHeaders: fc.constant(authJson),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        method: fc.constant('POST'),
        target: fc.constant('/internal/fetch'),
        payload: json(fc.oneof(fc.record({ paths: fc.array(storePath, { maxLength: 10 }) }), fc.anything())),
        extraHeaders: fc.constant(authJson),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        method: fc.constant('POST'),
        target: fc.constant('/internal/replicate'),
        payload: changeStream,
        extraHeaders: fc.constant<Header[]>([
          ['authorization', `Bearer ${ctx.token}`],
          ['content-type', 'application/x-filecluster-changes'],
        ]),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        method,
        target: fc.constantFrom(
          '/',
          '/files',
          '/internal',
          '/internal/status',
          '/internal/digest',
          '/internal/peers',
          '/healthz',
          '/readyz',
          '/metrics',
          '*',
          'http://x/files/a',
          '//files/a',
          '/FILES/a',
          '/files%2fa',
          '/files/a b',
          '/files/a?',
        ),
        payload: body,
        extraHeaders: fc.constant<Header[]>([]),
      }),
    },
  );
}

function encodeBody(payload: Buffer, mode: LengthMode): { headers: string; bytes: Buffer } {
  switch (mode) {
    case 'exact':
      return { headers: `Content-Length: ${payload.length}\r\n`, bytes: payload };
    case 'missing':
      return { headers: '', bytes: payload };
    case 'smaller':
      return { headers: `Content-Length: ${Math.floor(payload.length / 2)}\r\n`, bytes: payload };
    case 'garbage':
      return { headers: 'Content-Length: 12abc\r\n', bytes: payload };
    case 'duplicate':
      return { headers: `Content-Length: ${payload.length}\r\nContent-Length: ${payload.length + 1}\r\n`, bytes: payload };
    case 'huge':
      // Far over every limit: answered (413) before any body is read.
      return { headers: 'Content-Length: 99999999999\r\n', bytes: Buffer.alloc(0) };
    case 'chunked': {
      const chunks = payload.length ? [Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n')] : [];
      return { headers: 'Transfer-Encoding: chunked\r\n', bytes: Buffer.concat([...chunks, Buffer.from('0\r\n\r\n')]) };
    }
  }
}

/** One raw request, with what it needs to judge the answer. */
export function fuzzRequest(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      shapes(ctx),
      lengthMode,
      fc.oneof({ weight: 12, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'FOO/1') }),
    )
    .chain(([shape, mode, httpVersion]) => commonHeaders(ctx, shape.payload).map((headers) => ({ shape, mode, httpVersion, headers })))
    .map(({ shape, mode, httpVersion, headers }) => {
      const all = [...shape.extraHeaders, ...headers];
      // A change stream is read to its declared end, so a declared length far past the bytes sent only waits.
      const { headers: lengthHeaders, bytes } = encodeBody(shape.payload, mode === 'huge' && shape.target === '/internal/replicate' ? 'exact' : mode);
      const head = `${shape.method} ${shape.target} ${httpVersion}\r\nHost: fuzz\r\n${all.map(([k, v]) => `${k}: ${v}\r\n`).join('')}${lengthHeaders}Connection: close\r\n\r\n`;
      const ack = all.filter(([k]) => k === ACK_HEADER).map(([, v]) => v);
      const req: FuzzRequest = {
        method: shape.method,
        target: shape.target,
        bytes: Buffer.concat([Buffer.from(head, 'latin1'), bytes]),
        // Node keeps the first of repeated headers; a server-wide default of local means only an explicit header waits.
        asksPeerAcks: ack.length > 0 && (ack[0] === 'majority' || ack[0] === 'all'),
        conditional: all.some(([k]) => k === 'if-match' || k === 'if-none-match'),
        unknownMethod: !ROUTED_METHODS.includes(shape.method),
      };
      Object.defineProperty(req, fc.toStringMethod, { value: () => JSON.stringify(req.bytes.subarray(0, 2000).toString('latin1')) });
      return req;
    });
}
