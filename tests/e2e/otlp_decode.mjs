// Decodes an OTLP/HTTP ExportTraceServiceRequest with the official opentelemetry-proto
// definitions (otlp_proto/, v1.9.0, loaded by protobufjs), not a hand-written reader.
//   node otlp_decode.mjs json|protobuf < body  ->  the request as JSON on stdout
// Protobuf bodies are decoded as they are. JSON bodies follow the OTLP/JSON mapping, whose one
// difference from the proto3 JSON mapping is hex trace and span ids (OTLP specification,
// "JSON Protobuf Encoding"): those are turned into bytes, then the message is verified against
// the schema, built, encoded and decoded again, so an unknown field, a wrong type or a bad id
// fails here. The output has ids in lower-case hex and 64-bit integers as decimal strings.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(here, 'otlp_proto', target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: false });
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

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

const INT64 = ['int64', 'uint64', 'fixed64', 'sfixed64', 'sint64'];
const INT32 = ['int32', 'uint32', 'fixed32', 'sfixed32', 'sint32'];

// A scalar as the OTLP/JSON mapping writes it: 64-bit integers as decimal strings (numbers
// accepted), enums as integers.
function scalarOk(field, v) {
  if (field.resolvedType instanceof protobuf.Enum) return Number.isInteger(v);
  if (INT64.includes(field.type)) {
    return (typeof v === 'string' && /^-?[0-9]+$/.test(v)) || Number.isInteger(v);
  }
  if (INT32.includes(field.type)) return Number.isInteger(v);
  if (field.type === 'string') return typeof v === 'string';
  if (field.type === 'bool') return typeof v === 'boolean';
  if (field.type === 'double' || field.type === 'float') return typeof v === 'number';
  if (field.type === 'bytes') return Buffer.isBuffer(v);
  return false;
}

// Every key of `object` must be a field of `type` with a value of its type (fromObject would
// drop unknown keys and coerce wrong values silently).
function checkFields(type, object, path) {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    throw new Error(`${path}: ${type.name} expected, got ${JSON.stringify(object)}`);
  }
  for (const [key, v] of Object.entries(object)) {
    const field = type.fields[key];
    if (!field) throw new Error(`${path}: ${type.name} has no field ${key}`);
    field.resolve();
    if (field.repeated && !Array.isArray(v)) throw new Error(`${path}.${key}: a list expected`);
    for (const item of field.repeated ? v : [v]) {
      if (field.resolvedType instanceof protobuf.Type) {
        checkFields(field.resolvedType, item, `${path}.${key}`);
      } else if (!scalarOk(field, item)) {
        throw new Error(`${path}.${key}: ${field.type} expected, got ${JSON.stringify(item)}`);
      }
    }
  }
}

const format = process.argv[2] ?? 'json';
const body = readFileSync(0);
let message;
if (format === 'protobuf') {
  message = Request.decode(body);
} else {
  const object = idsToBytes(JSON.parse(body.toString('utf8')), '$');
  checkFields(Request, object, '$');
  message = Request.decode(Request.encode(Request.fromObject(object)).finish());
}
const decoded = Request.toObject(message, { longs: String, enums: Number, bytes: String });
process.stdout.write(JSON.stringify(idsToHex(decoded)));
