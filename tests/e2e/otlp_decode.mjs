// Decodes an OTLP/HTTP ExportTraceServiceRequest with the official opentelemetry-proto
// definitions as generated (protobufjs static module) into @opentelemetry/otlp-transformer
// 0.216.0, build/src/generated/root.js; not a hand-written reader.
//   node otlp_decode.mjs json|protobuf < body  ->  the request as JSON on stdout
// Protobuf bodies are decoded as they are. JSON bodies follow the OTLP/JSON mapping, whose one
// difference from the proto3 JSON mapping is hex trace and span ids (OTLP specification,
// "JSON Protobuf Encoding"): those are turned into bytes, then the message is built, encoded and
// decoded again, and must come back equal to the input, so an unknown field, a wrong type or a
// bad id fails here. The output has ids in lower-case hex and 64-bit integers as decimal strings.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';

const require = createRequire(import.meta.url);
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const ID_FIELDS = ['traceId', 'spanId', 'parentSpanId'];

function idsToBytes(value, path) {
  if (Array.isArray(value)) return value.map((v) => idsToBytes(v, path));
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [key, v] of Object.entries(value)) {
    if (ID_FIELDS.includes(key)) {
      if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v)) {
        throw new Error(`${path}.${key}: not lower-case hex: ${JSON.stringify(v)}`);
      }
      out[key] = Buffer.from(v, 'hex');
    } else {
      out[key] = idsToBytes(v, `${path}.${key}`);
    }
  }
  return out;
}

function idsToHex(value) {
  if (Array.isArray(value)) return value.map(idsToHex);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = ID_FIELDS.includes(key) ? Buffer.from(v, 'base64').toString('hex') : idsToHex(v);
  }
  return out;
}

// The input as toObject writes it back: empty lists and ids as base64 like the decoded side.
function normalized(value) {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(normalized);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [key, v] of Object.entries(value)) {
    if (Array.isArray(v) && v.length === 0) continue;
    out[key] = normalized(v);
  }
  return out;
}

const format = process.argv[2] ?? 'json';
const body = readFileSync(0);
let message;
if (format === 'protobuf') {
  message = Request.decode(body);
} else {
  const object = idsToBytes(JSON.parse(body.toString('utf8')), '$');
  message = Request.decode(Request.encode(Request.fromObject(object)).finish());
  const back = Request.toObject(message, { longs: String, enums: Number, bytes: String });
  if (!isDeepStrictEqual(normalized(back), normalized(object))) {
    throw new Error(`not an OTLP ExportTraceServiceRequest (unknown field or wrong type):
${JSON.stringify(normalized(object))}
decodes as
${JSON.stringify(normalized(back))}`);
  }
}
const decoded = Request.toObject(message, { longs: String, enums: Number, bytes: String });
process.stdout.write(JSON.stringify(idsToHex(decoded)));
