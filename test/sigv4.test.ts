/**
 * AWS Signature V4 as the DynamoDB face verifies it, against requests signed by the AWS SDK's own
 * signer (`@smithy/signature-v4`): what it signs verifies, and every change, wrong secret, unknown
 * key, stale date or malformed header is refused with DynamoDB's error names.
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
import {
  SignatureError,
  type SignedRequest,
  verifySignature,
} from "../src/faces/dynamodb/sigv4.js";

const SECRETS: Record<string, string> = { admin: "admin-token-123", "ck-ana": "ana-secret" };
const secretOf = (id: string) => SECRETS[id];

async function signed(
  options: {
    keyId?: string;
    secret?: string;
    path?: string;
    query?: Record<string, string>;
    body?: string;
    at?: Date;
  } = {},
): Promise<SignedRequest> {
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: options.keyId ?? "admin",
      secretAccessKey: options.secret ?? SECRETS[options.keyId ?? "admin"] ?? "x",
    },
    region: "us-east-1",
    service: "dynamodb",
    sha256: Hash.bind(null, "sha256"),
  });
  const body = options.body ?? '{"TableName":"users"}';
  const request = await signer.sign(
    {
      method: "POST",
      protocol: "http:",
      hostname: "127.0.0.1",
      port: 8000,
      path: options.path ?? "/",
      query: options.query ?? {},
      headers: {
        host: "127.0.0.1:8000",
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "DynamoDB_20120810.DescribeTable",
      },
      body,
    },
    { signingDate: options.at ?? new Date() },
  );
  const headers = Object.fromEntries(
    Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  const query = new URLSearchParams(request.query as Record<string, string>).toString();
  return { method: "POST", path: request.path, query, headers, body: Buffer.from(body) };
}

function refusal(request: SignedRequest, now = Date.now()): { type: string; message: string } {
  try {
    verifySignature(request, secretOf, now);
  } catch (error) {
    if (error instanceof SignatureError) return { type: error.type, message: error.message };
    throw error;
  }
  throw new Error("the signature was accepted");
}

const MISMATCH = {
  type: "InvalidSignatureException",
  message:
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
};

describe("SigV4", () => {
  it("verifies what the AWS SDK signs, and names the key that signed it", async () => {
    expect(verifySignature(await signed(), secretOf, Date.now())).toBe("admin");
    expect(verifySignature(await signed({ keyId: "ck-ana" }), secretOf, Date.now())).toBe("ck-ana");
    const named = await signed({ path: "/db/orders/", query: { b: "2 3", a: "x/y*" } });
    expect(verifySignature(named, secretOf, Date.now())).toBe("admin");
  });

  it("refuses a changed body, header, path or query, and a wrong secret", async () => {
    const request = await signed();
    expect(refusal({ ...request, body: Buffer.from('{"TableName":"other"}') })).toEqual(MISMATCH);
    expect(
      refusal({
        ...request,
        headers: { ...request.headers, "x-amz-target": "DynamoDB_20120810.DeleteTable" },
      }),
    ).toEqual(MISMATCH);
    expect(refusal({ ...request, path: "/db/x/" })).toEqual(MISMATCH);
    expect(refusal({ ...request, query: "a=1" })).toEqual(MISMATCH);
    expect(refusal(await signed({ secret: "wrong" }))).toEqual(MISMATCH);
  });

  it("refuses an unknown key id as DynamoDB does", async () => {
    expect(refusal(await signed({ keyId: "nobody", secret: "s" }))).toEqual({
      type: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    });
  });

  it("refuses a date more than 15 minutes from the server's clock, either way", async () => {
    const now = Date.now();
    for (const [skew, message] of [
      [-16 * 60_000, /^Signature expired: \d{8}T\d{6}Z is now earlier than/],
      [16 * 60_000, /^Signature not yet current: \d{8}T\d{6}Z is still later than/],
    ] as const) {
      const request = await signed({ at: new Date(now + skew) });
      expect(refusal(request, now)).toMatchObject({
        type: "InvalidSignatureException",
        message: expect.stringMatching(message),
      });
    }
    expect(verifySignature(await signed({ at: new Date(now - 14 * 60_000) }), secretOf, now)).toBe(
      "admin",
    );
  });

  it("refuses a missing or malformed Authorization header", async () => {
    const request = await signed();
    const { authorization: _, ...headers } = request.headers;
    expect(refusal({ ...request, headers })).toEqual({
      type: "MissingAuthenticationTokenException",
      message: "Request is missing Authentication Token",
    });
    for (const authorization of [
      "Bearer abc",
      "AWS4-HMAC-SHA256 Credential=admin",
      "AWS4-HMAC-SHA256",
    ]) {
      expect(refusal({ ...request, headers: { ...request.headers, authorization } }).type).toBe(
        "IncompleteSignatureException",
      );
    }
    const { "x-amz-date": __, ...undated } = request.headers;
    expect(refusal({ ...request, headers: undated }).type).toBe("IncompleteSignatureException");
  });
});
