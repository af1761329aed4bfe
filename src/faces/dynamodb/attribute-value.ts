/**
 * DynamoDB's attribute values, in their wire form (`{ "S": "…" }`, `{ "N": "12.5" }`, …), which is
 * also how items are stored: numbers stay decimal strings (38 significant digits, exact), binary
 * stays base64. Everything here validates input as DynamoDB does and answers with its messages.
 */

export type AttributeValue =
  | { readonly S: string }
  | { readonly N: string }
  /** Base64, as on the wire. */
  | { readonly B: string }
  | { readonly BOOL: boolean }
  | { readonly NULL: true }
  | { readonly L: readonly AttributeValue[] }
  | { readonly M: Readonly<Record<string, AttributeValue>> }
  | { readonly SS: readonly string[] }
  | { readonly NS: readonly string[] }
  | { readonly BS: readonly string[] };

export type Item = Readonly<Record<string, AttributeValue>>;

export type TypeName = "S" | "N" | "B" | "BOOL" | "NULL" | "L" | "M" | "SS" | "NS" | "BS";

/** The type of a (valid) attribute value. */
export function typeOf(value: AttributeValue): TypeName {
  return Object.keys(value)[0] as TypeName;
}
