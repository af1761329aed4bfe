/**
 * The V8 codec the tests give `@deno/kv`: its default one writes typed arrays as Node host objects
 * and cannot read Deno's format 16; Node's plain serializer pair fixes both
 * (reference/kv-connect.md §0).
 */
import v8 from "node:v8";

export const encodeV8 = (value: unknown) => {
  const s = new v8.Serializer();
  s.writeHeader();
  s.writeValue(value);
  return new Uint8Array(s.releaseBuffer());
};

export const decodeV8 = (bytes: Uint8Array) => {
  const copy = new Uint8Array(bytes);
  if (copy[0] === 0xff && copy[1] === 0x10) copy[1] = 0x0f;
  const d = new v8.Deserializer(copy);
  d.readHeader();
  return d.readValue();
};
