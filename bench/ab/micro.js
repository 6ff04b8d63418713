// Micro-benchmarks behind the hot-path changes in BENCHMARKS.md ("Before and after"): the
// cloudevents SDK's way against this build's, per event, on 1,000 default-format row events.
//   npm run build && node bench/ab/micro.js
// Plain JavaScript, like drain.js: it reads this checkout's dist/.
const path = require('path');
const { CloudEvent, HTTP } = require('cloudevents');
const DIST = path.join(__dirname, '..', '..', 'dist', 'src');
const { defaultFormat } = require(path.join(DIST, 'events', 'default'));
const { encodeEvent, encodeBatch } = require(path.join(DIST, 'sinks', 'http', 'encode'));
const { structuredJson } = require(path.join(DIST, 'events', 'structured'));

const relation = {
  id: 1, schema: 'public', table: 'bench_rows', replicaIdentity: 'default', keyColumns: ['id'],
  columns: [{ name: 'id', typeOid: 20, typeMod: -1, isKey: true }, { name: 'payload', typeOid: 25, typeMod: -1, isKey: false }],
};
const ctx = { source: '/pg-cloudevents/db', typePrefix: 'orm', overrides: {}, table: { table: 'public.bench_rows', schema: 'public', name: 'bench_rows', app: 'public', model: 'bench_rows' } };
const change = (i) => ({ kind: 'insert', relation, new: { id: i, payload: 'x'.repeat(92) }, missingColumns: [], commitLsn: 0x16b3748n + BigInt(i), commitTime: new Date(), xid: 5, ordinal: 0 });
const events = Array.from({ length: 1000 }, (_, i) => defaultFormat.build(change(i), ctx));
const attributes = events.map((e) => Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)));

const N = 200_000;
/** Time per event of `f`, which handles `eventsPerCall` events per call. */
function time(name, f, eventsPerCall = 1) {
  const calls = Math.round(N / eventsPerCall);
  for (let i = 0; i < calls / 10; i++) f(i % 1000);
  const t = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) f(i % 1000);
  console.log(`${name.padEnd(58)} ${(Number(process.hrtime.bigint() - t) / N / 1000).toFixed(2)} µs/event`);
}
time('new CloudEvent(attributes) (SDK, strict)', (i) => new CloudEvent(attributes[i], true));
time('new CloudEvent(attributes, false) (SDK, no validation)', (i) => new CloudEvent(attributes[i], false));
time('defaultFormat.build(change) (this build, whole event)', (i) => defaultFormat.build(change(i), ctx));
time('HTTP.binary(event) (SDK)', (i) => HTTP.binary(events[i]));
time('encodeEvent(event, binary) (this build)', (i) => encodeEvent(events[i], 'binary'));
time('JSON.stringify(event) (SDK toJSON)', (i) => JSON.stringify(events[i]));
time('structuredJson(event) (this build)', (i) => structuredJson(events[i]));
const batch = events.slice(0, 100);
time('JSON.stringify(100 events)', () => JSON.stringify(batch), 100);
time('encodeBatch(100 events)', () => encodeBatch(batch).body, 100);

// Exact json/jsonb numbers (README, "The event"): the decoder's check and the splicing serialiser.
const { stringifyJson, parseJsonLossless } = require(path.join(DIST, 'events', 'json-text'));
const { decodeValue } = require(path.join(DIST, 'capture', 'values'));
const { TypeRegistry } = require(path.join(DIST, 'capture', 'types-registry'));
const registry = new TypeRegistry();
const jsonb = '{"id": 22, "tags": ["a", "b"], "price": 12.5, "note": "a note of some 40 characters, roughly", "nested": {"ok": true, "n": null, "at": "2020-12-01T09:43:00Z"}}';
const jsonbBig = jsonb.replace('12.5', '12345678901234567890');
time('JSON.parse(jsonb text, 150 B)', () => JSON.parse(jsonb));
time('decodeValue(jsonb text, 150 B) (this build, exact digits)', () => decodeValue(jsonb, 3802, registry));
time('decodeValue(jsonb text with a long number) (lossless parse)', () => decodeValue(jsonbBig, 3802, registry));
const data = events.map((e) => e.data);
time('JSON.stringify(event.data)', (i) => JSON.stringify(data[i]));
time('stringifyJson(event.data) (this build, no RawJson)', (i) => stringifyJson(data[i]));
const withRaw = data.map((d) => ({ ...d, data: { ...d.data, j: parseJsonLossless(jsonbBig) } }));
const withPlain = data.map((d) => ({ ...d, data: { ...d.data, j: JSON.parse(jsonb) } }));
time('JSON.stringify(data with a jsonb column)', (i) => JSON.stringify(withPlain[i]));
time('stringifyJson(data with a jsonb column holding a RawJson)', (i) => stringifyJson(withRaw[i]));
