// A fake LLM provider on 127.0.0.1:0, over HTTPS (the test CA's leaf certificate) or plain HTTP.
// Tests queue replies in the order requests will arrive; every request is recorded whole
// (method, path, headers, raw body) together with what was sent back and whether the client
// side closed the connection before the reply was finished.
//
// A reply is one of:
//   { status, headers, json, gzip }  JSON body; with gzip: true it is gzip-compressed when the
//                                     request's Accept-Encoding allows it (like the real APIs)
//   { status, headers, body }         raw body (string or Buffer)
//   { status, headers, sse, end }     Server-Sent Events: each element is { event?, data } (data
//                                     objects are sent as JSON) or an async function awaited
//                                     between two events, which lets a test hold the stream at a
//                                     point of its choosing. end: false keeps the response open
//                                     until the other side closes the connection. eol: '\r\n'
//                                     ends lines with CRLF (as Gemini does); gzip: true
//                                     compresses the stream, flushed after every event.
// or a function of the RecordedRequest returning one of these, for replies that depend on the
// request the way a real provider's do. respond(fn) sets such a function for every request the
// queue has no reply for (a scripted model that answers a conversation of any length).
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { constants as zlibConstants, createGzip, gzipSync } from 'node:zlib';

export class RecordedRequest {
  constructor(req, body) {
    this.method = req.method;
    this.path = req.url;
    this.headers = req.headers; // lower-case names; repeated headers joined by ", "
    this.rawHeaders = req.rawHeaders;
    this.body = body;
    // performance.now() when the whole request had arrived, and when the fake began to write
    // its reply (null until then): every byte of the reply left after repliedAt.
    this.receivedAt = performance.now();
    this.repliedAt = null;
    this.response = { status: 0, headers: {}, body: Buffer.alloc(0), contentEncoding: 'identity' };
    // True once the connection closed before the reply was completely written.
    this.closedEarly = false;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  get bodyText() {
    return this.body.toString('utf8');
  }

  json() {
    return JSON.parse(this.bodyText);
  }

  // Every value the request carried for header `name`, in order (rawHeaders keeps duplicates).
  headerValues(name) {
    const lower = name.toLowerCase();
    const values = [];
    for (let i = 0; i < this.rawHeaders.length; i += 2) {
      if (this.rawHeaders[i].toLowerCase() === lower) values.push(this.rawHeaders[i + 1]);
    }
    return values;
  }
}

function acceptsGzip(headers) {
  return (headers['accept-encoding'] ?? '').split(',').some((item) => {
    const [coding, ...params] = item.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return (coding === 'gzip' || coding === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

// The bytes of one SSE event as the fake sends it.
export function encodeSse({ event, data }, eol = '\n') {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  return `${event ? `event: ${event}${eol}` : ''}data: ${text}${eol}${eol}`;
}

// A gzip stream whose output is handed to `write` as it is produced; push() resolves once the
// bytes given so far are flushed out, so each SSE event leaves as a decodable piece.
class GzipPipe {
  #gzip = createGzip();

  constructor(write) {
    this.#gzip.on('data', write);
    this.ended = new Promise((resolve) => this.#gzip.once('end', resolve));
  }

  push(bytes) {
    this.#gzip.write(bytes);
    return new Promise((resolve) => this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, resolve));
  }

  end() {
    this.#gzip.end();
    return this.ended;
  }
}

function noReplyQueued(req) {
  return {
    status: 500,
    json: {
      error: {
        message: `fake provider: no reply queued for ${req.method} ${req.url}`,
        type: 'server_error',
      },
    },
  };
}

export class FakeProvider {
  #server;
  #replies = [];
  #responder = null;
  #waiters = [];
  #sockets = new Set();
  #closing = null;

  constructor(server, scheme) {
    this.#server = server;
    this.scheme = scheme;
    this.requests = [];
  }

  // tls: { cert, key } from testCertificates(), or null for plain HTTP.
  static async start({ tls = null } = {}) {
    const fake = new FakeProvider(null, tls ? 'https' : 'http');
    const handler = (req, res) => fake.#handle(req, res);
    const server = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler)
      : createHttpServer(handler);
    fake.#server = server;
    server.on('connection', (socket) => {
      fake.#sockets.add(socket);
      socket.on('close', () => fake.#sockets.delete(socket));
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    fake.port = server.address().port;
    fake.url = `${fake.scheme}://127.0.0.1:${fake.port}`;
    return fake;
  }

  reply(spec) {
    this.#replies.push(spec);
    return this;
  }

  // Answers every request that finds the reply queue empty with `fn(recordedRequest)`.
  respond(fn) {
    this.#responder = fn;
    return this;
  }

  // Resolves with the index-th recorded request (0-based) once it has arrived whole.
  request(index) {
    if (index < this.requests.length) return Promise.resolve(this.requests[index]);
    return new Promise((resolve) => this.#waiters.push({ index, resolve }));
  }

  // Closes the listener and every connection, replies in progress included. Idempotent.
  async close() {
    this.#closing ??= new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
    await this.#closing;
  }

  async #handle(req, res) {
    const parts = [];
    for await (const part of req) parts.push(part);
    const recorded = new RecordedRequest(req, Buffer.concat(parts));
    this.requests.push(recorded);
    const index = this.requests.length - 1;
    this.#waiters = this.#waiters.filter((w) =>
      w.index === index ? (w.resolve(recorded), false) : true,
    );

    res.on('close', () => {
      recorded.closedEarly = !res.writableFinished;
      recorded.resolveDone(recorded.closedEarly ? 'closed' : 'finished');
    });
    const next = this.#replies.shift() ?? this.#responder ?? noReplyQueued(req);
    const spec = typeof next === 'function' ? next(recorded) : next;
    try {
      await this.#send(spec, recorded, res);
    } catch (err) {
      if (!res.destroyed) res.destroy(err);
    }
  }

  async #send(spec, recorded, res) {
    recorded.repliedAt = performance.now();
    const status = spec.status ?? 200;
    const headers = { ...(spec.headers ?? {}) };
    const response = recorded.response;
    response.status = status;
    if (spec.sse) {
      headers['content-type'] ??= 'text/event-stream; charset=utf-8';
      headers['cache-control'] ??= 'no-cache';
      const gzip = spec.gzip && acceptsGzip(recorded.headers);
      if (gzip) {
        headers['content-encoding'] = 'gzip';
        response.contentEncoding = 'gzip';
      }
      response.headers = headers;
      res.writeHead(status, headers);
      res.flushHeaders();
      const sent = [];
      const write = (bytes) => {
        if (res.destroyed) return;
        sent.push(bytes);
        response.body = Buffer.concat(sent);
        res.write(bytes);
      };
      const pipe = gzip ? new GzipPipe(write) : null;
      for (const step of spec.sse) {
        if (typeof step === 'function') {
          await step();
          continue;
        }
        if (res.destroyed) return;
        const bytes = Buffer.from(encodeSse(step, spec.eol));
        if (pipe) {
          await pipe.push(bytes);
        } else {
          write(bytes);
        }
      }
      if (spec.end === false) return;
      if (pipe) await pipe.end();
      res.end();
      return;
    }
    let body;
    if (spec.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = Buffer.from(JSON.stringify(spec.json));
    } else {
      body = Buffer.from(spec.body ?? '');
    }
    if (spec.gzip && acceptsGzip(recorded.headers)) {
      body = gzipSync(body);
      headers['content-encoding'] = 'gzip';
      headers.vary = 'Accept-Encoding';
      response.contentEncoding = 'gzip';
    }
    headers['content-length'] = String(body.length);
    response.headers = headers;
    response.body = body;
    res.writeHead(status, headers);
    res.end(body);
  }
}
