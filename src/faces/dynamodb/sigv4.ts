/**
 * AWS Signature Version 4, verified as DynamoDB verifies it (for the DynamoDB face): the request's
 * `Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request,
 * SignedHeaders=…, Signature=…` must be the HMAC of its canonical form under the key id's secret,
 * dated within 15 minutes of the server's clock. Failures carry DynamoDB's error names.
 */
import { createHmac, hash, timingSafeEqual } from "node:crypto";

/** A refusal, with the name and message DynamoDB answers it with (HTTP 400). */
export class SignatureError extends Error {
  constructor(
    readonly type:
      | "MissingAuthenticationTokenException"
      | "IncompleteSignatureException"
      | "InvalidSignatureException"
      | "UnrecognizedClientException",
    message: string,
  ) {
    super(message);
  }
}

/** What of a request the signature covers. */
export interface SignedRequest {
  readonly method: string;
  /** The path as sent, still percent-encoded. */
  readonly path: string;
  /** The query string as sent, without `?`. */
  readonly query: string;
  /** Header values by lowercase name (repeated headers joined with `,`). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Uint8Array;
}

/** How far the request's date may be from the server's clock. */
const MAX_SKEW_MS = 15 * 60_000;

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([a-z0-9\-;]+)\s*,\s*Signature=([0-9a-f]{64})$/;

/** The access key id an `Authorization` header names; `undefined` when it is not SigV4's. */
export function accessKeyIdOf(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : AUTHORIZATION.exec(authorization.trim())?.[1];
}

const sha256 = (data: string | Uint8Array) => hash("sha256", data, "hex");
const hmac = (key: string | Buffer, data: string) =>
  createHmac("sha256", key).update(data).digest();

/** RFC 3986 encoding, as SigV4 canonicalizes query parameters. */
const uriEncode = (text: string) =>
  encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );

function canonicalQuery(query: string): string {
  if (query === "") return "";
  return query
    .split("&")
    .map((pair) => {
      const at = pair.indexOf("=");
      const [name, value] = at === -1 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
      const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
      return [uriEncode(decode(name)), uriEncode(decode(value))] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

const header = (request: SignedRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
};

/** `20240102T030405Z` as epoch ms; `NaN` when malformed. */
function amzTime(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Number.NaN;
}

/**
 * Signing keys by secret and scope: a key is four HMACs to derive and holds for a day, a region
 * and a service, so each client's is derived once a day rather than per request.
 */
const signingKeys = new Map<string, Buffer>();
const MAX_SIGNING_KEYS = 10_000;

function signingKey(secret: string, scope: string): Buffer {
  const id = `${scope}\n${secret}`;
  let key = signingKeys.get(id);
  if (key === undefined) {
    key = scope
      .split("/")
      .concat("aws4_request")
      .reduce<Buffer | string>((k, part) => hmac(k, part), `AWS4${secret}`) as Buffer;
    if (signingKeys.size >= MAX_SIGNING_KEYS) signingKeys.clear();
    signingKeys.set(id, key);
  }
  return key;
}

/**
 * The signature of `request` over the headers `names` (lowercase, sorted) by `secret`, dated
 * `amzDate` in `scope` (`<date>/<region>/<service>`).
 */
function signatureOf(
  request: SignedRequest,
  names: readonly string[],
  payloadHash: string,
  amzDate: string,
  scope: string,
  secret: string,
): Buffer {
  const canonicalHeaders = names
    .map((name) => `${name}:${(header(request, name) ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const canonical = [
    request.method,
    request.path || "/",
    canonicalQuery(request.query),
    canonicalHeaders,
    names.join(";"),
    payloadHash,
  ].join("\n");
  const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}/aws4_request\n${sha256(canonical)}`;
  return hmac(signingKey(secret, scope), toSign);
}

/**
 * The headers that sign `request` (which must carry `host`) as `keyId` with `secret` at `now`:
 * `x-amz-date` and `authorization`, for Cairn's own clients (the CLI).
 */
export function signRequest(
  request: SignedRequest,
  keyId: string,
  secret: string,
  region: string,
  now: number,
): { "x-amz-date": string; authorization: string } {
  const amzDate = new Date(now).toISOString().replace(/[-:]|\.\d{3}/g, "");
  const scope = `${amzDate.slice(0, 8)}/${region}/dynamodb`;
  const dated = { ...request, headers: { ...request.headers, "x-amz-date": amzDate } };
  const names = Object.keys(dated.headers)
    .map((n) => n.toLowerCase())
    .sort();
  const signature = signatureOf(dated, names, sha256(request.body), amzDate, scope, secret);
  return {
    "x-amz-date": amzDate,
    authorization: `AWS4-HMAC-SHA256 Credential=${keyId}/${scope}/aws4_request, SignedHeaders=${names.join(";")}, Signature=${signature.toString("hex")}`,
  };
}

/**
 * The access key id that signed `request`, once its signature holds under `secretOf(keyId)`
 * (`undefined`: no such key) at `now`; throws `SignatureError` otherwise.
 */
export function verifySignature(
  request: SignedRequest,
  secretOf: (accessKeyId: string) => string | undefined,
  now: number,
): string {
  const authorization = header(request, "authorization");
  if (authorization === undefined)
    throw new SignatureError(
      "MissingAuthenticationTokenException",
      "Request is missing Authentication Token",
    );
  const m = AUTHORIZATION.exec(authorization.trim());
  if (!m) {
    throw new SignatureError(
      "IncompleteSignatureException",
      `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, and the AWS4-HMAC-SHA256 algorithm. Authorization=${authorization}`,
    );
  }
  const [, keyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
  const amzDate = header(request, "x-amz-date") ?? "";
  const at = amzTime(amzDate);
  if (Number.isNaN(at) || !amzDate.startsWith(date!)) {
    throw new SignatureError(
      "IncompleteSignatureException",
      "The request must carry an X-Amz-Date header (yyyyMMdd'T'HHmmss'Z') of the credential's date",
    );
  }
  if (Math.abs(now - at) > MAX_SKEW_MS) {
    const shown = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
    throw new SignatureError(
      "InvalidSignatureException",
      at < now
        ? `Signature expired: ${amzDate} is now earlier than ${shown(now - MAX_SKEW_MS)} (${shown(now)} - 15 min.)`
        : `Signature not yet current: ${amzDate} is still later than ${shown(now + MAX_SKEW_MS)} (${shown(now)} + 15 min.)`,
    );
  }
  const secret = secretOf(keyId!);
  if (secret === undefined) {
    throw new SignatureError(
      "UnrecognizedClientException",
      "The security token included in the request is invalid.",
    );
  }
  const names = signedHeaders!.split(";");
  if (!names.includes("host")) {
    throw new SignatureError("InvalidSignatureException", "'Host' must be a signed header");
  }
  // The body's own hash, whatever a header claims: a claimed one that differs is a mismatch.
  const payloadHash = sha256(request.body);
  const claimed = header(request, "x-amz-content-sha256");
  const expected = signatureOf(
    request,
    names,
    payloadHash,
    amzDate,
    `${date}/${region}/${service}`,
    secret,
  );
  const given = Buffer.from(signature!, "hex");
  const matches = given.length === expected.length && timingSafeEqual(given, expected);
  if (!matches || (claimed !== undefined && claimed !== payloadHash)) {
    throw new SignatureError(
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
  }
  return keyId!;
}
