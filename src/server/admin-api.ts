/**
 * The admin API: principals and their tokens (`/admin/tokens`), for admin tokens only. It is the
 * server's own, not a wire protocol, so it lives here, over the server's token store; the server
 * mounts it like a face (once: tokens belong to the server, not to one database).
 */
import { parseDuration } from "../codec/duration.js";
import type { Face, Route } from "../faces/face.js";
import { fields, Reply } from "../faces/http-io.js";
import { grantsFromJson } from "../kv/grants.js";
import { KvError } from "../kv-error.js";
import { infoOf, type NewToken, type TokenInfo, type TokenStore } from "./tokens.js";

/** `POST /admin/tokens`'s body, checked. */
export function newTokenFromJson(json: unknown): NewToken {
  const b = fields(json, ["name", "grants", "admin", "expiresIn"]);
  if (b.admin !== undefined && typeof b.admin !== "boolean")
    throw new KvError("INVALID_ARGUMENT", "admin must be true or false");
  const expiresIn = b.expiresIn === undefined ? undefined : parseDuration(b.expiresIn, "expiresIn");
  if (expiresIn === 0) throw new KvError("INVALID_ARGUMENT", "expiresIn must be more than 0");
  return {
    name: b.name as string,
    grants: grantsFromJson(b.grants),
    admin: b.admin as boolean | undefined,
    expiresIn,
  };
}

/** A created principal as the admin API answers: its info and, this once, its token. */
export type CreatedToken = TokenInfo & { readonly token: string };

/**
 * The admin API's operations on `tokens`, JSON in and out: what its routes answer, and what
 * `cairn token --data` does on a database directly.
 */
export function tokenAdmin(tokens: TokenStore) {
  return {
    async create(body: unknown): Promise<CreatedToken> {
      const { token, principal } = await tokens.create(newTokenFromJson(body));
      const { name, ...rest } = infoOf(principal);
      return { name, token, ...rest };
    },
    list: async () => ({ tokens: (await tokens.list()).map(infoOf) }),
    /** `NOT_FOUND` for a name no principal has. */
    async revoke(name: string) {
      if (!(await tokens.revoke(name)))
        throw new KvError("NOT_FOUND", `No principal named ${JSON.stringify(name)}`);
      return { revoked: name };
    },
  };
}

export function adminApi(tokens: TokenStore): Face {
  const admin = tokenAdmin(tokens);
  const routes: Route[] = [
    {
      method: "POST",
      path: "/admin/tokens",
      operation: "create_token",
      access: "admin",
      async handle(request) {
        const created = await admin.create(await request.json());
        return new Reply(201, "application/json", JSON.stringify(created));
      },
    },
    {
      method: "GET",
      path: "/admin/tokens",
      operation: "list_tokens",
      access: "admin",
      handle: () => admin.list(),
    },
    {
      method: "DELETE",
      path: "/admin/tokens/:name",
      operation: "revoke_token",
      access: "admin",
      handle: ({ params }) => admin.revoke(params.name!),
    },
  ];
  return { name: "admin", bases: [""], routes, perDatabase: false };
}
