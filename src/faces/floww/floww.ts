/**
 * Floww's KV routes, as its Python backend serves them (reference/seed-systems.md §4), so Floww's
 * SDK and runtime can point at Cairn: `/api/kv/<provider>/…`, errors as FastAPI's `{ detail }`.
 *
 * Callers are workflows. A Cairn token is the workflow its principal names, in the namespace
 * `default`, and manages every table when its grants let it write the provider's keys. With a
 * signing secret (`--floww-jwt-secret`), Floww's own workflow tokens are accepted too: HS256 JWTs
 * from `floww-backend` for `floww-workflow`, whose `workflow_id` is the workflow and whose
 * `namespace_id` scopes the data. On these routes a caller may read and write its namespace's
 * Floww keys; which tables it may use is Floww's table permissions, checked by the store.
 */
import { errors as joseErrors, jwtVerify } from "jose";
import { concatBytes, encodeKey } from "../../codec/key-codec.js";
import { Permissions } from "../../kv/grants.js";
import { KvError } from "../../kv-error.js";
import { checkName } from "../../protocol/floww-name.js";
import type { Authenticator, Face, Principal, Route, RouteRequest } from "../face.js";
import { bearerToken, fields, Reply } from "../http-io.js";
import { FlowwStore } from "./floww-store.js";

/** The namespace of callers with a Cairn token. */
const CAIRN_NAMESPACE = "default";

/** A caller of the Floww routes: a workflow in a namespace. */
class Workflow implements Principal {
  constructor(
    readonly name: string,
    readonly namespace: string,
    /** The Cairn principal behind a Cairn token; `null` for a Floww token. */
    private readonly cairn: Principal | null,
  ) {}

  permissionsIn(database: string | null): Permissions {
    const own = this.cairn?.permissionsIn(database) ?? NO_GRANTS;
    return own.widened([["floww", this.namespace]]);
  }

  /** Whether it manages every table of `provider`: its own grants let it write their keys. */
  manages(provider: string, database: string | null): boolean {
    if (this.cairn === null) return false;
    const prefix = encodeKey(["floww", this.namespace, provider]);
    return this.cairn.permissionsIn(database).allows("write", prefix, concatBytes(prefix, [0xff]));
  }

  deriveToken(): never {
    throw new KvError("FORBIDDEN", "A Floww caller has no KV Connect token");
  }
}

const NO_GRANTS = Permissions.of([], null);

const unauthorized = (message: string) => new KvError("UNAUTHORIZED", message);

/** The workflow a Floww JWT names, verified with `secret`. */
async function workflowOfJwt(token: string, secret: Uint8Array): Promise<Workflow> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, secret, {
      algorithms: ["HS256"],
      audience: "floww-workflow",
      issuer: "floww-backend",
    }));
  } catch (error) {
    throw unauthorized(
      error instanceof joseErrors.JWTExpired ? "Token has expired" : "Invalid token",
    );
  }
  const { workflow_id: workflow, namespace_id: namespace } = payload;
  if (
    typeof workflow !== "string" ||
    typeof namespace !== "string" ||
    workflow === "" ||
    namespace === ""
  )
    throw unauthorized("Invalid token");
  return new Workflow(workflow, namespace, null);
}

const isJwt = (token: string) => token.split(".").length === 3 && token.startsWith("eyJ");

function authenticateWith(secret: Uint8Array | undefined) {
  return async (req: RouteRequest["req"], tokens: Authenticator): Promise<Principal> => {
    const authorization = req.headers.authorization;
    if (secret !== undefined) {
      const token = bearerToken(authorization);
      if (isJwt(token)) return workflowOfJwt(token, secret);
    }
    const principal = await tokens.authenticate(authorization);
    return new Workflow(principal.name, CAIRN_NAMESPACE, principal);
  };
}

function storeOf(request: RouteRequest): FlowwStore {
  const workflow = request.principal as Workflow;
  const provider = checkName(request.params.provider ?? "", "Provider");
  return new FlowwStore(() => request.database, workflow.namespace, provider, {
    workflow: workflow.name,
    manager: workflow.manages(provider, request.databaseName),
  });
}

const param = (request: RouteRequest, name: string) => request.params[name] ?? "";

/** FastAPI's boolean query values. */
function booleanOf(text: string | null, name: string): boolean {
  if (text === null) return false;
  const value = text.toLowerCase();
  if (["true", "1", "yes", "on"].includes(value)) return true;
  if (["false", "0", "no", "off"].includes(value)) return false;
  throw new KvError("UNPROCESSABLE", `${name} must be a boolean, e.g. true or false`);
}

/** The body as a JSON object, or 422 as FastAPI answers a body it cannot validate. */
async function bodyOf(request: RouteRequest, known: string[]): Promise<Record<string, unknown>> {
  const body = await request.json();
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new KvError("UNPROCESSABLE", "The request body must be a JSON object");
  return fields(body, known);
}

const routes: Route[] = [
  {
    method: "GET",
    path: "/:provider",
    operation: "list_tables",
    access: "read",
    handle: (request) => storeOf(request).listTables(),
  },
  {
    method: "GET",
    path: "/:provider/permissions/:table",
    operation: "list_permissions",
    access: "read",
    handle: (request) => storeOf(request).listPermissions(param(request, "table")),
  },
  {
    method: "POST",
    path: "/:provider/permissions/:table",
    operation: "grant",
    access: "write",
    async handle(request) {
      const body = await bodyOf(request, ["workflow_id", "can_read", "can_write"]);
      const { workflow_id, can_read = true, can_write = false } = body;
      if (typeof workflow_id !== "string")
        throw new KvError("UNPROCESSABLE", "workflow_id is required: the workflow to grant to");
      if (typeof can_read !== "boolean" || typeof can_write !== "boolean")
        throw new KvError("UNPROCESSABLE", "can_read and can_write must be true or false");
      return storeOf(request).grant(param(request, "table"), workflow_id, { can_read, can_write });
    },
  },
  {
    method: "DELETE",
    path: "/:provider/permissions/:table/:workflow",
    operation: "revoke",
    access: "write",
    handle: (request) =>
      storeOf(request).revoke(param(request, "table"), param(request, "workflow")),
  },
  {
    method: "GET",
    path: "/:provider/:table",
    operation: "list",
    access: "read",
    handle: (request) =>
      booleanOf(request.query.get("include_values"), "include_values")
        ? storeOf(request).listItems(param(request, "table"))
        : storeOf(request).listKeys(param(request, "table")),
  },
  {
    method: "GET",
    path: "/:provider/:table/:key",
    operation: "get",
    access: "read",
    handle: (request) => storeOf(request).get(param(request, "table"), param(request, "key")),
  },
  {
    method: "PUT",
    path: "/:provider/:table/:key",
    operation: "set",
    access: "write",
    async handle(request) {
      const { value } = await bodyOf(request, ["value"]);
      return storeOf(request).set(param(request, "table"), param(request, "key"), value);
    },
  },
  {
    method: "DELETE",
    path: "/:provider/:table/:key",
    operation: "delete",
    access: "write",
    handle: (request) => storeOf(request).delete(param(request, "table"), param(request, "key")),
  },
];

/** Floww's KV routes; `jwtSecret` also admits Floww's own workflow tokens. */
export function flowwFace(options: { readonly jwtSecret?: string } = {}): Face {
  const secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
  return {
    name: "floww",
    bases: ["/api/kv"],
    routes,
    authenticate: authenticateWith(secret),
    errorReply: (error) =>
      new Reply(
        error.status,
        "application/json",
        JSON.stringify({ detail: error.message, code: error.code }),
      ),
  };
}
