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
import { infoOf, type NewToken, type TokenStore } from "./tokens.js";

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

export function adminApi(tokens: TokenStore): Face {
  const routes: Route[] = [
    {
      method: "POST",
      path: "/admin/tokens",
      access: "admin",
      async handle(request) {
        const { token, principal } = await tokens.create(newTokenFromJson(await request.json()));
        const { name, ...rest } = infoOf(principal);
        return new Reply(201, "application/json", JSON.stringify({ name, token, ...rest }));
      },
    },
    {
      method: "GET",
      path: "/admin/tokens",
      access: "admin",
      async handle() {
        return { tokens: (await tokens.list()).map(infoOf) };
      },
    },
    {
      method: "DELETE",
      path: "/admin/tokens/:name",
      access: "admin",
      async handle({ params }) {
        const name = params.name!;
        if (!(await tokens.revoke(name)))
          throw new KvError("NOT_FOUND", `No principal named ${JSON.stringify(name)}`);
        return { revoked: name };
      },
    },
  ];
  return { name: "admin", bases: [""], routes, perDatabase: false };
}
