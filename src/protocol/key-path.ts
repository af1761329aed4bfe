/**
 * Keys written as paths, for URLs (`GET /api/keys/users/123`) and the CLI (`cairn get users/123`).
 * Parts are separated by `/` and percent-decoded. A part of digits (optionally negative) that is a
 * safe integer is a number, as in the Buntime seed; anything else is a string, unless it starts
 * with a type prefix:
 *
 *   `string:123` a string · `number:1.5` (also `NaN`, `Infinity`, `-0`) · `bigint:12345678901234567890`
 *   · `bool:true` · `bytes:AQID` (base64url)
 */
import type { KvKey, KvKeyPart } from "../codec/key-codec.js";
import { KvError } from "../kv-error.js";

const INTEGER = /^-?\d+$/;

function parsePart(text: string, index: number): KvKeyPart {
  const colon = text.indexOf(":");
  if (colon > 0) {
    const rest = text.slice(colon + 1);
    switch (text.slice(0, colon)) {
      case "string":
        return rest;
      case "number": {
        const n = Number(rest);
        if (rest.trim() === "" || (Number.isNaN(n) && rest !== "NaN")) break;
        return n;
      }
      case "bigint":
        if (INTEGER.test(rest)) return BigInt(rest);
        break;
      case "bool":
        if (rest === "true" || rest === "false") return rest === "true";
        break;
      case "bytes":
        if (/^[A-Za-z0-9_-]*={0,2}$/.test(rest))
          return new Uint8Array(Buffer.from(rest, "base64url"));
        break;
      default:
        return text;
    }
    throw new KvError(
      "INVALID_KEY",
      `Key part ${index} (${JSON.stringify(text)}) is not a valid ${text.slice(0, colon)}`,
    );
  }
  if (INTEGER.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  return text;
}

export function parseKeyPath(path: string): KvKey {
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.length === 0)
    throw new KvError("INVALID_KEY", 'Key path cannot be empty; write keys like "users/123"');
  return parts.map((part, i) => {
    try {
      return parsePart(decodeURIComponent(part), i);
    } catch (e) {
      if (e instanceof KvError) throw e;
      throw new KvError("INVALID_KEY", `Key part ${i} is not valid percent-encoding: ${part}`);
    }
  });
}

function formatPart(part: KvKeyPart): string {
  switch (typeof part) {
    case "string":
      // An empty part would vanish between two slashes: it is written `string:`.
      return (
        (part === "" || INTEGER.test(part) || /^(string|number|bigint|bool|bytes):/.test(part)
          ? "string:"
          : "") + encodeURIComponent(part)
      );
    case "number":
      return Number.isSafeInteger(part) && !Object.is(part, -0)
        ? String(part)
        : `number:${Object.is(part, -0) ? "-0" : part}`;
    case "bigint":
      return `bigint:${part}`;
    case "boolean":
      return `bool:${part}`;
    default:
      return `bytes:${Buffer.from(part).toString("base64url")}`;
  }
}

/** The path `parseKeyPath` reads back as `key`. */
export function formatKeyPath(key: KvKey): string {
  return key.map(formatPart).join("/");
}
