/**
 * Floww's names (tables, keys, providers, workflows), as its backend checks them: shared by its
 * routes and by its client, which checks before sending (an empty or dot name would otherwise
 * change the path it is sent to).
 */
import { KvError } from "../kv-error.js";

const NAME = /^[a-zA-Z0-9_-]+$/;
/** A workflow is also a Cairn principal, whose name may hold `. @ + =` too. */
const WORKFLOW = /^[a-zA-Z0-9_.@+=-]+$/;
const MAX_NAME = 255;

/** `name`, or `INVALID_ARGUMENT` (400) with the backend's texts. */
export function checkName(name: string, what: "Table" | "Key" | "Provider" | "Workflow"): string {
  const refuse = (reason: string) => new KvError("INVALID_ARGUMENT", `${what} name ${reason}`);
  if (name === "") throw refuse("cannot be empty");
  if (name.length > MAX_NAME) throw refuse(`too long (max ${MAX_NAME} characters)`);
  if (what === "Workflow") {
    if (!WORKFLOW.test(name))
      throw refuse("must contain only alphanumeric characters and _ . @ + = -");
  } else if (!NAME.test(name)) {
    throw refuse("must contain only alphanumeric characters, underscores, and hyphens");
  }
  return name;
}
