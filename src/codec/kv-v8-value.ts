import { KvError } from "../kv-error.js";

/**
 * A value stored in V8's serialization format that Node cannot turn into a JavaScript value: what
 * Deno writes for `Blob`, `File`, `DOMException`, `CryptoKey` and other host objects (tag `\`,
 * 0x5C), anywhere inside the value, or a serializer format newer than Node's V8 reads.
 *
 * Cairn stores such bytes as they came, as denokv does, and gives them back unchanged: Deno reads
 * them over KV Connect as the value it wrote. Everywhere else the value is this wrapper: the SDK
 * returns it from `get`, `list`, `watch` and `listenQueue`, and writing it (at the top level of a
 * value) stores exactly `bytes` again. The JSON API shows it as
 * `{ "__type": "v8", "value": "<base64>" }`. Where filters and search never match it (it is not
 * JSON), and `sum`, `min`, `max`, `append` and `prepend` reject it like any other non-matching
 * type.
 */
export class KvV8Value {
  /** The V8 serializer bytes, header included (`FF` and the format version). */
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array))
      throw new KvError("INVALID_VALUE", "The bytes of a KvV8Value must be a Uint8Array");
    this.bytes = bytes;
    Object.freeze(this);
  }

  get [Symbol.toStringTag](): string {
    return "KvV8Value";
  }
}
