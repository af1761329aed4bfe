/**
 * The settings file of `cairn serve --config FILE`: JSONC (JSON with comments and trailing
 * commas) holding `cairn serve`'s settings, each under its flag's camelCase name
 * (`--max-connections`: `maxConnections`; the switch `--no-auth`: `auth`), the `--queue-…` and
 * `--metrics-…` flags in `queue` and `metrics` objects as the Buntime seed's file has them
 * (`queue.lockDuration`, `metrics.persistent`). A value is checked
 * as the flag's argument is, by the flag's own parser. Keys of the seed's file that Cairn does not
 * take are refused with the reason (reference/seed-systems.md §1.14).
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Option } from "commander";
import {
  getNodeValue,
  type Node,
  type ParseError,
  parseTree,
  printParseErrorCode,
} from "jsonc-parser";
import { KvError } from "../kv-error.js";

/** A setting a file gives: the value as the flag's parser returns it, and where it is (`cairn.jsonc:3:11`). */
export interface FileSetting {
  readonly value: unknown;
  readonly at: string;
}

/** Flags named `--<group>-…` are set inside a `<group>` object. */
const GROUPS = ["queue", "metrics"];

/** The key of `option`'s setting in a file, e.g. `maxConnections`, `auth`, `queue.lockDuration`. */
export function settingKey(option: Option): string {
  const name = option.attributeName();
  const group = GROUPS.find((g) => new RegExp(`^${g}[A-Z]`).test(name));
  if (group === undefined) return name;
  const rest = name.slice(group.length);
  return `${group}.${rest[0]!.toLowerCase()}${rest.slice(1)}`;
}

/** Why the Buntime seed's keys that Cairn does not take are refused. */
const SEED_KEYS: Record<string, string> = {
  database:
    'Cairn picks the storage from "data": a SQLite file path, or a postgres:// URL for PostgreSQL',
  "queue.cleanupInterval":
    "Cairn needs no cleanup pass: a message whose lease has run out is claimed again by the next claim, which takes expired leases as ready",
};

/**
 * The settings in `text`, the JSONC file `file`, by the attribute name of the option in `options`
 * that each sets. A relative path given to a `<path>` or `<file>` flag is resolved against the
 * file's folder. Throws `INVALID_ARGUMENT` listing every problem, a line each, as
 * `file:line:column: what is wrong`.
 */
export function parseSettings(
  text: string,
  file: string,
  options: readonly Option[],
): Map<string, FileSetting> {
  const at = (offset: number) => `${file}:${position(text, offset)}`;
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true });
  const [error] = errors;
  if (error) throw problems([`${at(error.offset)}: ${words(printParseErrorCode(error.error))}`]);
  if (root?.type !== "object") {
    throw problems([`${file}: the settings must be a JSON object, e.g. { "port": 8000 }`]);
  }
  const byKey = new Map(options.map((o) => [settingKey(o), o]));
  const settings = new Map<string, FileSetting>();
  const found: string[] = [];
  const visit = (object: Node, group: string | null) => {
    const seen = new Map<string, string>();
    for (const property of object.children!) {
      const [keyNode, valueNode] = property.children as [Node, Node];
      const key = group === null ? String(keyNode.value) : `${group}.${keyNode.value}`;
      const where = at(keyNode.offset);
      const first = seen.get(key);
      seen.set(key, where);
      const option = byKey.get(key);
      if (first !== undefined) {
        found.push(`${where}: "${key}" is set twice (first at ${first})`);
      } else if (option !== undefined) {
        try {
          const value = settingValue(option, getNodeValue(valueNode), key);
          settings.set(option.attributeName(), {
            value:
              typeof value === "string" && isPath(option, value)
                ? resolve(dirname(file), value)
                : value,
            at: at(valueNode.offset),
          });
        } catch (error) {
          found.push(`${at(valueNode.offset)}: ${(error as Error).message}`);
        }
      } else if (group === null && GROUPS.includes(key)) {
        if (valueNode.type === "object") visit(valueNode, key);
        else
          found.push(
            `${at(valueNode.offset)}: "${key}" must be an object, got ${show(getNodeValue(valueNode))}`,
          );
      } else if (Object.hasOwn(SEED_KEYS, key)) {
        found.push(`${where}: "${key}" is not a setting: ${SEED_KEYS[key]}`);
      } else {
        found.push(`${where}: "${key}" is not a setting${suggestion(key, [...byKey.keys()])}`);
      }
    }
  };
  visit(root, null);
  if (found.length > 0) throw problems(found);
  return settings;
}

/** `parseSettings` of the file at `path`. */
export function readSettings(path: string, options: readonly Option[]): Map<string, FileSetting> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw problems([
      `${path}: cannot be read${code === "ENOENT" ? ": there is no such file" : ` (${code})`}`,
    ]);
  }
  return parseSettings(text, path, options);
}

/** Whether `option` takes no value (`--writer-thread`, `--no-auth`). */
export const isSwitch = (option: Option): boolean => !option.required && !option.optional;

/** `value`, set for `option` in a file under `key`, as the flag's parser takes it. */
function settingValue(option: Option, value: unknown, key: string): unknown {
  if (isSwitch(option)) {
    if (typeof value !== "boolean")
      throw new Error(`"${key}" must be true or false, got ${show(value)}`);
    return value;
  }
  if (Array.isArray(option.defaultValue)) {
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
      throw new Error(`"${key}" must be a list of strings, got ${show(value)}`);
    }
    return value.reduce<unknown>(
      (previous, v) => parsed(option, v, previous, key),
      option.defaultValue,
    );
  }
  if (option.argChoices) {
    if (typeof value !== "string" || !option.argChoices.includes(value)) {
      const choices = option.argChoices.map((c) => `"${c}"`);
      throw new Error(
        `"${key}" must be ${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}, got ${show(value)}`,
      );
    }
    return value;
  }
  if (option.parseArg) {
    if (typeof value !== "string" && typeof value !== "number") {
      throw new Error(`"${key}" must be a number or a string, got ${show(value)}`);
    }
    return parsed(option, String(value), undefined, key);
  }
  if (typeof value !== "string") throw new Error(`"${key}" must be a string, got ${show(value)}`);
  return value;
}

/** `text` through `option`'s parser, its complaint naming `key`. */
function parsed(option: Option, text: string, previous: unknown, key: string): unknown {
  try {
    return option.parseArg!(text, previous);
  } catch (error) {
    throw new Error(`"${key}": ${(error as Error).message}; got ${show(text)}`);
  }
}

/** Whether `value`, given to `option`, is a file's path (not a URL, not `:memory:`). */
const isPath = (option: Option, value: string) =>
  /<(path|file)>/.test(option.flags) &&
  value !== ":memory:" &&
  !/^[a-z][a-z0-9+.-]*:\/\//i.test(value);

/** ` (did you mean "<key>"?)` for the key in `keys` closest to `key`, if one is close. */
function suggestion(key: string, keys: readonly string[]): string {
  const plain = (k: string) => k.toLowerCase().replace(/[-_.]/g, "");
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const candidate of keys) {
    const d = Math.min(
      distance(plain(key), plain(candidate)),
      distance(plain(key), plain(candidate.split(".").at(-1)!)),
    );
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best === undefined ? "" : ` (did you mean "${best}"?)`;
}

/** Edits (insertions, deletions, substitutions, swaps of neighbours) from `a` to `b`. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/** `line:column` (from 1) of `offset` in `text`. */
function position(text: string, offset: number): string {
  const before = text.slice(0, offset);
  return `${before.split("\n").length}:${offset - before.lastIndexOf("\n")}`;
}

/** `CommaExpected` as `comma expected`. */
const words = (code: string) => code.replace(/(?<=[a-z])(?=[A-Z])/g, " ").toLowerCase();

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

const problems = (lines: readonly string[]) => new KvError("INVALID_ARGUMENT", lines.join("\n"));
