/**
 * Every failure Cairn reports is a `KvError`. The `code` is the API: it is stable, travels over
 * every wire, and decides the HTTP status in one table (`statusOf`). A failed check is not an
 * error: `commit()` resolves to `{ ok: false }`.
 */
export const errorStatus = {
  /** A key is not an array of string | number | bigint | boolean | Uint8Array, or is empty for a write. */
  INVALID_KEY: 400,
  /** An encoded key exceeds the read or write size limit. */
  KEY_TOO_LARGE: 400,
  /** A value cannot be stored (not structured-cloneable, or a bad KvU64). */
  INVALID_VALUE: 400,
  /** A value nests arrays, objects, Maps and Sets deeper than `limits.maxValueDepth`. */
  VALUE_TOO_DEEP: 400,
  /** An encoded value exceeds the value size limit. */
  VALUE_TOO_LARGE: 413,
  /** A list selector, range or cursor is malformed or out of bounds. */
  INVALID_SELECTOR: 400,
  /** A cursor is not one this list produced. */
  INVALID_CURSOR: 400,
  /** An option or argument has the wrong type or range (limits, durations, mutation shapes). */
  INVALID_ARGUMENT: 400,
  /** A where filter is malformed: an unknown operator, a bad field path or a wrong operand type. */
  INVALID_FILTER: 400,
  /** An atomic operation exceeds a limit (checks, mutations, total size). */
  ATOMIC_TOO_LARGE: 400,
  /** A sum/min/max/append/prepend met a stored value of a type it cannot combine with. */
  TYPE_MISMATCH: 400,
  /** A bounded sum's result lies outside its bounds, and the sum does not clamp. */
  OUT_OF_RANGE: 400,
  /** A request body is not valid JSON. */
  INVALID_JSON: 400,
  /** A request body exceeds the server's limit. */
  PAYLOAD_TOO_LARGE: 413,
  /** A request's head (request line and headers) exceeds what the server reads (16 KiB). */
  HEADERS_TOO_LARGE: 431,
  /** A request's head did not arrive in time. */
  REQUEST_TIMEOUT: 408,
  /** No valid access token was presented. */
  UNAUTHORIZED: 401,
  /** The token is valid but not allowed to do this. */
  FORBIDDEN: 403,
  /** No route at this path. */
  NOT_FOUND: 404,
  /** The route exists but not for this method. */
  METHOD_NOT_ALLOWED: 405,
  /** A body is well-formed JSON but not what the route takes (Floww's routes answer it 422, as its backend does). */
  UNPROCESSABLE: 422,
  /** A name is taken (a principal's). */
  ALREADY_EXISTS: 409,
  /** The Kv was closed; open a new one. */
  CLOSED: 409,
  /** The storage is busy or unreachable; the operation may be retried. */
  UNAVAILABLE: 503,
  /** An unexpected fault inside Cairn or its storage. */
  INTERNAL: 500,
} as const;

export type KvErrorCode = keyof typeof errorStatus;

export class KvError extends Error {
  override readonly name = "KvError";

  constructor(
    readonly code: KvErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** The HTTP status that this error's code maps to. */
  get status(): number {
    return errorStatus[this.code];
  }
}
