/**
 * The faces a server serves, in one list: each is mounted under its base paths for the default
 * database and under `/db/<name>` for each named one. A new face is a folder in `src/faces/` and
 * a line here.
 */
import { databaseProtocol } from "../faces/database-protocol/database-protocol.js";
import type { TableDeclaration } from "../faces/dynamodb/declared-tables.js";
import { dynamodbFace } from "../faces/dynamodb/dynamodb.js";
import type { Face } from "../faces/face.js";
import { flowwFace } from "../faces/floww/floww.js";
import { glia } from "../faces/glia/glia.js";
import { happy } from "../faces/happy/happy.js";
import { jsonApiFace } from "../faces/json-api/json-api.js";
import { kvConnect } from "../faces/kv-connect/kv-connect.js";

/** What the CLI uses of the DynamoDB face: table declarations, and signing its own requests. */
export {
  createTableRequest,
  parseTableDeclaration,
  type TableDeclaration,
} from "../faces/dynamodb/declared-tables.js";
export { signRequest } from "../faces/dynamodb/sigv4.js";

/** What some faces are configured with. */
export interface FaceOptions {
  /** The secret Floww signs its workflow tokens with: they are then accepted on its routes. */
  readonly flowwJwtSecret?: string;
  /** DynamoDB tables created at start where missing (`cairn serve --dynamodb-table`). */
  readonly dynamodbTables?: readonly TableDeclaration[];
  /**
   * How long (ms) the JSON API's queue routes lease a message when the request names no `lease`
   * (default `limits.defaultLeaseMs`; the Buntime seed's `queue.lockDuration`).
   */
  readonly queueLeaseMs?: number;
}

export function facesFor(options: FaceOptions = {}): readonly Face[] {
  return [
    databaseProtocol,
    jsonApiFace({ queueLeaseMs: options.queueLeaseMs }),
    kvConnect,
    glia,
    happy,
    flowwFace({ jwtSecret: options.flowwJwtSecret }),
    dynamodbFace(),
  ];
}
