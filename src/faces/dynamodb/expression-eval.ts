/**
 * DynamoDB's expressions at work on items: conditions evaluated, updates applied, projections
 * taken. Values compare as DynamoDB compares them (`equals`, `compare`) and numbers add exactly
 * (decimal.ts); what an item's data makes impossible is refused with DynamoDB's messages.
 */
import {
  type AttributeValue,
  binaryOf,
  compare,
  equals,
  type Item,
  typeOf,
} from "./attribute-value.js";
import { addNumbers, subtractNumbers } from "./decimal.js";
import { validation } from "./errors.js";
import type {
  Condition,
  ConditionFunction,
  Operand,
  Path,
  Update,
  UpdateValue,
} from "./expression-parser.js";

/** The value at `path` in `item`, if there is one. */
export function valueAt(item: Item, path: Path): AttributeValue | undefined {
  let value: AttributeValue | undefined = { M: item };
  for (const part of path) {
    if (value === undefined) return undefined;
    value = child(value, part);
  }
  return value;
}

function child(value: AttributeValue, part: string | number): AttributeValue | undefined {
  if (typeof part === "number") return "L" in value ? value.L[part] : undefined;
  return "M" in value && Object.hasOwn(value.M, part) ? value.M[part] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Conditions

/**
 * Whether `item` (a missing item is an empty one) satisfies `condition`. Never throws: a
 * comparison of values of different or unordered types, or with a missing attribute, is false
 * (`<>` is true), as is a function given attributes of types it does not take.
 */
export function evaluate(condition: Condition, item: Item | undefined): boolean {
  return holds(condition, item ?? {});
}

function holds(condition: Condition, item: Item): boolean {
  switch (condition.kind) {
    case "and":
      return holds(condition.left, item) && holds(condition.right, item);
    case "or":
      return holds(condition.left, item) || holds(condition.right, item);
    case "not":
      return !holds(condition.condition, item);
    case "compare": {
      const left = operandValue(condition.left, item);
      const right = operandValue(condition.right, item);
      const same = left !== undefined && right !== undefined && equals(left, right);
      if (condition.op === "=") return same;
      if (condition.op === "<>") return !same;
      const order = left === undefined || right === undefined ? undefined : compare(left, right);
      if (order === undefined) return false;
      switch (condition.op) {
        case "<":
          return order < 0;
        case "<=":
          return order <= 0;
        case ">":
          return order > 0;
        default:
          return order >= 0;
      }
    }
    case "between": {
      const value = operandValue(condition.operand, item);
      const low = operandValue(condition.low, item);
      const high = operandValue(condition.high, item);
      if (value === undefined || low === undefined || high === undefined) return false;
      const fromLow = compare(value, low);
      const toHigh = compare(value, high);
      return fromLow !== undefined && toHigh !== undefined && fromLow >= 0 && toHigh <= 0;
    }
    case "in": {
      const value = operandValue(condition.operand, item);
      return (
        value !== undefined &&
        condition.list.some((operand) => {
          const candidate = operandValue(operand, item);
          return candidate !== undefined && equals(value, candidate);
        })
      );
    }
    case "function":
      return holdsFunction(condition.name, condition.args, item);
  }
}

function holdsFunction(name: ConditionFunction, args: readonly Operand[], item: Item): boolean {
  const [first, second] = args.map((arg) => operandValue(arg, item));
  switch (name) {
    case "attribute_exists":
      return first !== undefined;
    case "attribute_not_exists":
      return first === undefined;
    case "attribute_type":
      return (
        first !== undefined && second !== undefined && "S" in second && typeOf(first) === second.S
      );
    case "begins_with":
      if (first === undefined || second === undefined) return false;
      if ("S" in first && "S" in second) return first.S.startsWith(second.S);
      if ("B" in first && "B" in second) {
        const prefix = binaryOf(second.B);
        return binaryOf(first.B).subarray(0, prefix.length).equals(prefix);
      }
      return false;
    case "contains":
      return first !== undefined && second !== undefined && contains(first, second);
  }
}

/** contains(): a substring of a string or binary, a member of a set, an element of a list. */
function contains(whole: AttributeValue, part: AttributeValue): boolean {
  if ("S" in whole) return "S" in part && whole.S.includes(part.S);
  if ("B" in whole) return "B" in part && binaryOf(whole.B).includes(binaryOf(part.B));
  // Set members and values are canonical (one spelling per number and per byte string).
  if ("SS" in whole) return "S" in part && whole.SS.includes(part.S);
  if ("NS" in whole) return "N" in part && whole.NS.includes(part.N);
  if ("BS" in whole) return "B" in part && whole.BS.includes(part.B);
  if ("L" in whole) return whole.L.some((element) => equals(element, part));
  return false;
}

/** An operand's value, if it has one: size() of a type without a size has none. */
function operandValue(operand: Operand, item: Item): AttributeValue | undefined {
  switch (operand.kind) {
    case "path":
      return valueAt(item, operand.path);
    case "value":
      return operand.value;
    case "size": {
      const value = operandValue(operand.operand, item);
      const size = value === undefined ? undefined : sizeOf(value);
      return size === undefined ? undefined : { N: String(size) };
    }
  }
}

/** size(): a string's UTF-8 bytes, a binary's bytes, the members of a set, list or map. */
function sizeOf(value: AttributeValue): number | undefined {
  if ("S" in value) return Buffer.byteLength(value.S, "utf8");
  if ("B" in value) return binaryOf(value.B).length;
  if ("M" in value) return Object.keys(value.M).length;
  if ("L" in value) return value.L.length;
  if ("SS" in value) return value.SS.length;
  if ("NS" in value) return value.NS.length;
  return "BS" in value ? value.BS.length : undefined;
}

// ---------------------------------------------------------------------------------------------
// Updates

const MISSING = "The provided expression refers to an attribute that does not exist in the item";
const WRONG_TYPE = "An operand in the update expression has an incorrect data type";
const INVALID_PATH = "The document path provided in the update expression is invalid for update";

/**
 * `item` with `update` applied, and the paths the update touched (for ReturnValues UPDATED_OLD
 * and UPDATED_NEW, with `project`). As DynamoDB does: every SET value is computed from the item
 * as it was; list indexes mean positions in the lists as they were (REMOVE a[1], a[3] removes
 * both), a SET beyond a list's end appends (in index order), a REMOVE beyond it does nothing;
 * ADD to a missing attribute creates it, DELETE of a set's last members removes it.
 * `exists` says whether the item was stored before; when it was not, `item` is what the update
 * starts from (its key) and a REMOVE inside a missing attribute does nothing, where it fails for
 * a stored item. ValidationException with DynamoDB's message for a missing attribute a value
 * needs, operands of the wrong type, and paths through what is missing or not a map or list.
 */
export function applyUpdate(
  update: Update,
  item: Item,
  exists = true,
): { item: Item; updated: Path[] } {
  const values = new Map(
    update.actions.flatMap((action) =>
      action.kind === "SET" ? [[action, computed(action.value, item)] as const] : [],
    ),
  );
  const edits = new Edits(item);
  for (const action of update.actions) {
    const slot = edits.slot(action.path);
    if (slot === undefined) {
      if (action.kind === "REMOVE" && !exists) continue;
      throw validation(INVALID_PATH);
    }
    switch (action.kind) {
      case "SET":
        slot.put(values.get(action)!);
        break;
      case "REMOVE":
        slot.remove();
        break;
      case "ADD":
        slot.put(slot.current === undefined ? action.value : added(slot.current, action.value));
        break;
      case "DELETE": {
        if (slot.current === undefined) break;
        const rest = deleted(slot.current, action.value);
        if (rest === undefined) slot.remove();
        else slot.put(rest);
      }
    }
  }
  return { item: edits.done(), updated: update.actions.map((action) => [...action.path]) };
}

/** Where an action puts or removes a value: a map's member or a list's element. */
interface Slot {
  readonly current: AttributeValue | undefined;
  put(value: AttributeValue): void;
  remove(): void;
}

/**
 * An update's changes to a copy of an item: made in place, except that elements appended to or
 * removed from a list wait until the end, so that every index means a position in the list as
 * it was.
 */
class Edits {
  private readonly root: Record<string, AttributeValue>;
  private readonly appends = new Map<AttributeValue[], Map<number, AttributeValue>>();
  private readonly removals = new Map<AttributeValue[], Set<number>>();

  constructor(item: Item) {
    this.root = structuredClone(item) as Record<string, AttributeValue>;
  }

  /** The slot at `path`, if its parent is a map (for a name) or a list (for an index). */
  slot(path: Path): Slot | undefined {
    const parent = valueAt(this.root, path.slice(0, -1));
    const last = path[path.length - 1]!;
    if (parent !== undefined && "M" in parent && typeof last === "string") {
      const members = parent.M as Record<string, AttributeValue>;
      return {
        current: Object.hasOwn(members, last) ? members[last] : undefined,
        // An own property whatever the name, `__proto__` too.
        put: (value) =>
          Object.defineProperty(members, last, {
            value,
            writable: true,
            enumerable: true,
            configurable: true,
          }),
        remove: () => delete members[last],
      };
    }
    if (parent !== undefined && "L" in parent && typeof last === "number") {
      const elements = parent.L as AttributeValue[];
      const current = elements[last];
      return {
        current,
        put: (value) => {
          if (current !== undefined) elements[last] = value;
          else entriesOf(this.appends, elements, () => new Map()).set(last, value);
        },
        remove: () => {
          if (current !== undefined) entriesOf(this.removals, elements, () => new Set()).add(last);
        },
      };
    }
    return undefined;
  }

  /** The item, with the waiting appends (in index order) and removals made. */
  done(): Item {
    for (const [list, appended] of this.appends) {
      list.push(...[...appended].sort(([a], [b]) => a - b).map(([, value]) => value));
    }
    for (const [list, indexes] of this.removals) {
      for (const index of [...indexes].sort((a, b) => b - a)) list.splice(index, 1);
    }
    return this.root;
  }
}

function entriesOf<T>(lists: Map<AttributeValue[], T>, list: AttributeValue[], create: () => T): T {
  const entries = lists.get(list) ?? create();
  lists.set(list, entries);
  return entries;
}

/** A SET's value, computed from the item before the update. */
function computed(value: UpdateValue, item: Item): AttributeValue {
  switch (value.kind) {
    case "path": {
      const found = valueAt(item, value.path);
      if (found === undefined) throw validation(MISSING);
      return found;
    }
    case "value":
      return value.value;
    case "if_not_exists":
      return valueAt(item, value.path) ?? computed(value.fallback, item);
    case "list_append": {
      const left = typed(computed(value.left, item), "L");
      const right = typed(computed(value.right, item), "L");
      return { L: [...left.L, ...right.L] };
    }
    default: {
      const left = typed(computed(value.left, item), "N");
      const right = typed(computed(value.right, item), "N");
      return { N: (value.kind === "+" ? addNumbers : subtractNumbers)(left.N, right.N) };
    }
  }
}

function typed<T extends "L" | "N">(
  value: AttributeValue,
  type: T,
): Extract<AttributeValue, Record<T, unknown>> {
  if (!(type in value)) throw validation(WRONG_TYPE);
  return value as Extract<AttributeValue, Record<T, unknown>>;
}

/** ADD: a number's sum, or a set's union. */
function added(current: AttributeValue, operand: AttributeValue): AttributeValue {
  if (typeOf(current) !== typeOf(operand)) throw validation(WRONG_TYPE);
  if ("N" in current && "N" in operand) return { N: addNumbers(current.N, operand.N) };
  const members = new Set(setMembers(current));
  return withMembers(current, [...members, ...setMembers(operand).filter((m) => !members.has(m))]);
}

/** DELETE: the set without `operand`'s members, or undefined if none is left. */
function deleted(current: AttributeValue, operand: AttributeValue): AttributeValue | undefined {
  if (typeOf(current) !== typeOf(operand)) throw validation(WRONG_TYPE);
  const gone = new Set(setMembers(operand));
  const rest = setMembers(current).filter((member) => !gone.has(member));
  return rest.length === 0 ? undefined : withMembers(current, rest);
}

/** A set's members, canonical (so equal members are equal strings). */
function setMembers(value: AttributeValue): readonly string[] {
  if ("SS" in value) return value.SS;
  if ("NS" in value) return value.NS;
  return "BS" in value ? value.BS : [];
}

/** A set of `set`'s type with `members`. */
function withMembers(set: AttributeValue, members: readonly string[]): AttributeValue {
  if ("SS" in set) return { SS: members };
  return "NS" in set ? { NS: members } : { BS: members };
}

// ---------------------------------------------------------------------------------------------
// Projections

/** Part of a projection: a map's chosen members or a list's chosen elements, by index. */
interface Branch {
  readonly members: Map<string | number, Branch | AttributeValue>;
}

const isBranch = (node: Branch | AttributeValue): node is Branch => "members" in node;

/**
 * The parts of `item` at `paths`, as ProjectionExpression returns them: nested maps keep only the
 * chosen members, lists only the chosen elements, in their order (`a[1], a[3]` gives a list of
 * two); paths to nothing add nothing.
 */
export function project(item: Item, paths: readonly Path[]): Item {
  const root: Branch = { members: new Map() };
  for (const path of paths) {
    const value = valueAt(item, path);
    if (value === undefined) continue;
    let branch = root;
    for (const [i, part] of path.entries()) {
      const node = branch.members.get(part);
      if (i === path.length - 1) branch.members.set(part, value);
      else if (node === undefined || isBranch(node)) {
        const next = node ?? { members: new Map() };
        branch.members.set(part, next);
        branch = next;
      } else break;
    }
  }
  return Object.fromEntries(
    [...root.members].map(([name, node]) => [name, projected(node)]),
  ) as Item;
}

function projected(node: Branch | AttributeValue): AttributeValue {
  if (!isBranch(node)) return node;
  const members = [...node.members];
  if (typeof members[0]?.[0] === "number") {
    return { L: members.sort(([a], [b]) => Number(a) - Number(b)).map(([, n]) => projected(n)) };
  }
  return { M: Object.fromEntries(members.map(([name, n]) => [name, projected(n)])) };
}
