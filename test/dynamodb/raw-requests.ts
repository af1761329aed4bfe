/**
 * DynamoDB requests sent with `fetch`, for what the AWS SDK will not send: members it does not
 * know, unknown operations, no signature or a malformed one, a stale date. Signed (when asked)
 * by the face's own signer, as the AWS SDKs sign.
 */
import { signRequest } from "../../src/faces/dynamodb/sigv4.js";

/** Who signs a request, and when (epoch ms; default now). */
export interface Signer {
  readonly keyId: string;
  readonly secret: string;
  readonly at?: number;
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: assertions navigate arbitrary response JSON
  readonly json: any;
}

/**
 * POSTs `body` (JSON text, or a value to send as JSON) to the DynamoDB endpoint `endpoint` with
 * `X-Amz-Target: target` and `headers`, signed by `signer` when given.
 */
export async function postDynamodb(
  endpoint: string,
  target: string,
  body: unknown,
  signer?: Signer,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  const url = new URL(`${endpoint.replace(/\/+$/, "")}/`);
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const sent: Record<string, string> = {
    host: url.host,
    "content-type": "application/x-amz-json-1.0",
    "x-amz-target": target,
    ...headers,
  };
  const signature =
    signer &&
    signRequest(
      { method: "POST", path: url.pathname, query: "", headers: sent, body: Buffer.from(text) },
      signer.keyId,
      signer.secret,
      "us-east-1",
      signer.at ?? Date.now(),
    );
  const response = await fetch(url, {
    method: "POST",
    headers: { ...sent, ...signature },
    body: text,
  });
  const answer = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(answer);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text: answer, json };
}
