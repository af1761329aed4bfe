/**
 * The wire form of full-text search (see database-wire.ts for keys and entries):
 *
 *   create-index  { prefix, fields: string[], tokenize } → {}
 *   remove-index  { prefix }                       → { removed }
 *   list-indexes  {}                               → { indexes: { prefix, fields, tokenize }[] }
 *   search  { prefix, query: string, limit, where? } → { entries: Entry[] }
 */
import type { SearchIndex, SearchRequest } from "../engine/database.js";
import { b64, keyFromWire, object, unb64, whereToWire } from "./database-wire.js";
import { formatSearchQuery, searchIndexOf, searchRequestOf } from "./search-query.js";
import { formatPath, parsePath } from "./where-filter.js";

export interface WireIndex {
  prefix: string;
  fields: string[];
  tokenize: string;
}

export const indexToWire = (index: SearchIndex): WireIndex => ({
  prefix: b64(index.prefix),
  fields: index.fields.map(formatPath),
  tokenize: index.tokenize,
});

/** A prefix: a valid key, or the empty key (every entry). */
function prefixFromWire(value: unknown): Uint8Array {
  return value === "" ? new Uint8Array() : keyFromWire(value, "prefix", "read");
}

/** Decodes an index the server sent (trusted). */
export const indexFromServer = (w: WireIndex): SearchIndex => ({
  prefix: unb64(w.prefix),
  fields: w.fields.map((field) => parsePath(field, "fields")),
  tokenize: w.tokenize as SearchIndex["tokenize"],
});

export function indexFromWire(body: unknown): SearchIndex {
  const b = object(body, "body");
  return searchIndexOf(prefixFromWire(b.prefix), b);
}

export const indexPrefixToWire = (prefix: Uint8Array) => ({ prefix: b64(prefix) });

export function indexPrefixFromWire(body: unknown): Uint8Array {
  return prefixFromWire(object(body, "body").prefix);
}

export const searchToWire = (request: SearchRequest) => ({
  prefix: b64(request.prefix),
  query: formatSearchQuery(request.query),
  limit: request.limit,
  where: whereToWire(request.filter),
});

export function searchFromWire(body: unknown): SearchRequest {
  const b = object(body, "body");
  return searchRequestOf(prefixFromWire(b.prefix), b.query, { limit: b.limit, where: b.where });
}
