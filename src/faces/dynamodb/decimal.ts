/**
 * DynamoDB's Number: an exact decimal of at most 38 significant digits whose magnitude is 0 or
 * lies in [1E-130, 9.9999999999999999999999999999999999999E+125]. Numbers are kept as canonical
 * decimal strings, the form DynamoDB returns: plain notation (never an exponent, so `1E125` is a
 * 1 and 125 zeros), no `+`, no leading zeros before the first digit of the integer part, no
 * trailing zeros after the decimal point, no `.` without fraction digits, and `0` for every zero.
 */
import { validation } from "./errors.js";

const MAX_DIGITS = 38;
/** Decimal exponent of the first significant digit (`1.5E+125` has 125). */
const MAX_EXPONENT = 125;
const MIN_EXPONENT = -130;

const NOT_NUMERIC = "The parameter cannot be converted to a numeric value";
const OVERFLOW =
  "Number overflow. Attempting to store a number with magnitude larger than supported range";
const UNDERFLOW =
  "Number underflow. Attempting to store a number with magnitude smaller than supported range";
const TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number";

/** What DynamoDB reads as a number: no spaces, no hex, no NaN or Infinity, ASCII digits only. */
const SYNTAX = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** DynamoDB reads an exponent as a 64-bit integer: one past it is not a number at all. */
const MAX_LONG = 2n ** 63n - 1n;

/** A number as sign, significant digits (no leading or trailing zeros; "" for 0) and the exponent of the first. */
interface Parts {
  readonly negative: boolean;
  readonly digits: string;
  readonly exponent: number;
}

/**
 * The canonical form of a Number as a request spells it (`"01.50"` → `"1.5"`, `"-0"` → `"0"`,
 * `"1e2"` → `"100"`, `".5"`, `"5."`, `"+1"` and `"1E+2"` are numbers too). Throws a
 * ValidationException with DynamoDB's message when `text` is not a number, its magnitude is
 * out of range (a zero is range-checked by the exponent it is written with: `0e126` overflows),
 * or it has more than 38 significant digits.
 */
export function parseNumber(text: string): string {
  const match = SYNTAX.exec(text);
  const [, sign = "", whole = "", fraction = "", exponentText = "0"] = match ?? [];
  if (!match || whole.length + fraction.length === 0 || !fitsLong(exponentText)) {
    throw validation(`${NOT_NUMERIC}: ${text}`);
  }
  const { first, digits } = significant(whole + fraction);
  const written = BigInt(exponentText);
  // A zero's magnitude is judged as Java's BigDecimal judges it: by its scale.
  const exponent = digits
    ? written + BigInt(whole.length - 1 - first)
    : written - BigInt(fraction.length);
  return checked(sign === "-", digits, exponent, TOO_PRECISE);
}

function fitsLong(exponentText: string): boolean {
  if (exponentText.replace(/^[+-]?0*/, "").length > 19) return false;
  const exponent = BigInt(exponentText);
  return exponent <= MAX_LONG && exponent >= -MAX_LONG - 1n;
}

/** -1, 0 or 1 as canonical number `a` is less than, equal to or greater than `b`. */
export function compareNumbers(a: string, b: string): number {
  return Math.sign(Buffer.compare(numberKey(a), numberKey(b)));
}

/**
 * `a + b` of canonical numbers, exactly. A result beyond the range, or one that needs more than
 * 38 significant digits (`1E50 + 1`), fails as DynamoDB fails it: with its overflow message
 * (its underflow message for a non-zero result below 1E-130).
 */
export function addNumbers(a: string, b: string): string {
  const x = scaled(a);
  const y = scaled(b);
  const scale = Math.max(x.scale, y.scale);
  const sum = x.value * 10n ** BigInt(scale - x.scale) + y.value * 10n ** BigInt(scale - y.scale);
  const text = (sum < 0n ? -sum : sum).toString();
  const { first, digits } = significant(text);
  return digits ? checked(sum < 0n, digits, text.length - 1 - first - scale, OVERFLOW) : "0";
}

/** `a - b` of canonical numbers, exactly, failing as `addNumbers` does. */
export function subtractNumbers(a: string, b: string): string {
  return addNumbers(a, negate(b));
}

function negate(n: string): string {
  return n === "0" ? n : n.startsWith("-") ? n.slice(1) : `-${n}`;
}

/** A canonical number as an integer and the power of ten it is divided by. */
function scaled(n: string): { value: bigint; scale: number } {
  const point = n.indexOf(".");
  return point < 0
    ? { value: BigInt(n), scale: 0 }
    : { value: BigInt(n.slice(0, point) + n.slice(point + 1)), scale: n.length - point - 1 };
}

/**
 * Bytes whose unsigned lexicographic order is the numeric order of canonical numbers (equal
 * numbers, equal bytes): a sign byte (1 negative, 2 zero, 3 positive), the exponent of the
 * first digit in one byte, then one byte per digit. A negative number inverts the exponent and
 * the digits and ends with 10, which sorts after every inverted digit, so that -1.2 > -1.23.
 */
export function numberKey(n: string): Uint8Array {
  const { negative, digits, exponent } = parts(n);
  if (!digits) return Uint8Array.of(2);
  const bytes = [...digits].map((d) => (negative ? 9 - Number(d) : Number(d)));
  return negative
    ? Uint8Array.of(1, MAX_EXPONENT - exponent, ...bytes, 10)
    : Uint8Array.of(3, exponent - MIN_EXPONENT, ...bytes);
}

/** The canonical number `numberKey` made `key` from. */
export function numberOfKey(key: Uint8Array): string {
  if (key[0] === 2) return "0";
  const negative = key[0] === 1;
  const body = negative ? key.subarray(2, -1) : key.subarray(2);
  return format({
    negative,
    digits: Array.from(body, (d) => (negative ? 9 - d : d)).join(""),
    exponent: negative ? MAX_EXPONENT - key[1]! : key[1]! + MIN_EXPONENT,
  });
}

/**
 * The bytes DynamoDB counts for a canonical number in an item's size, as measured against its
 * 400 KB item limit: 1, plus 1 per base-100 digit (digit pairs aligned on the decimal point) from
 * the first significant digit to the last, plus 1 if negative. `0` is 1, `12` and `1E125` are 2,
 * `123` and `1.5` are 3, `-42` is 3; the developer guide's "1 byte per two significant digits,
 * plus 1 byte" approximates this.
 */
export function numberSize(n: string): number {
  const { negative, digits, exponent } = parts(n);
  if (!digits) return 1;
  const pairs = Math.floor(exponent / 2) - Math.floor((exponent - digits.length + 1) / 2) + 1;
  return 1 + pairs + (negative ? 1 : 0);
}

function parts(n: string): Parts {
  const negative = n.startsWith("-");
  const [whole = "", fraction = ""] = (negative ? n.slice(1) : n).split(".");
  const { first, digits } = significant(whole + fraction);
  return { negative: negative && digits !== "", digits, exponent: whole.length - 1 - first };
}

/** The digits of `all` from its first to its last non-zero one ("" if none), and where they start. */
function significant(all: string): { first: number; digits: string } {
  const first = all.search(/[1-9]/);
  let end = all.length;
  while (end > first && all[end - 1] === "0") end--;
  return { first, digits: first < 0 ? "" : all.slice(first, end) };
}

/** The canonical form of a number given as its parts, or DynamoDB's error when it cannot be stored. */
function checked(
  negative: boolean,
  digits: string,
  exponent: bigint | number,
  tooPrecise: string,
): string {
  if (exponent > MAX_EXPONENT) throw validation(OVERFLOW);
  if (exponent < MIN_EXPONENT) throw validation(UNDERFLOW);
  if (!digits) return "0";
  if (digits.length > MAX_DIGITS) throw validation(tooPrecise);
  return format({ negative, digits, exponent: Number(exponent) });
}

function format({ negative, digits, exponent }: Parts): string {
  const point = exponent + 1;
  const body =
    point <= 0
      ? `0.${"0".repeat(-point)}${digits}`
      : point >= digits.length
        ? digits + "0".repeat(point - digits.length)
        : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${body}` : body;
}
