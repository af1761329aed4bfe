/**
 * DynamoDB's errors, as `KvError`s: the code is Cairn's (it decides nothing on this face's wire
 * but travels to logs and other callers), and the `cause` names the exception DynamoDB answers
 * with, which `errorReply` sends as `{ "__type": "<namespace>#<name>", "message": … }`.
 */
import { KvError, type KvErrorCode } from "../../kv-error.js";

/** The exceptions this face answers with, and the namespace of each `__type`. */
const NAMESPACES = {
  ValidationException: "com.amazon.coral.validate",
  SerializationException: "com.amazon.coral.service",
  UnknownOperationException: "com.amazon.coral.service",
  MissingAuthenticationTokenException: "com.amazon.coral.service",
  IncompleteSignatureException: "com.amazon.coral.service",
  InvalidSignatureException: "com.amazon.coral.service",
  UnrecognizedClientException: "com.amazon.coral.service",
  AccessDeniedException: "com.amazon.coral.service",
  ConditionalCheckFailedException: "com.amazonaws.dynamodb.v20120810",
  ResourceNotFoundException: "com.amazonaws.dynamodb.v20120810",
  ResourceInUseException: "com.amazonaws.dynamodb.v20120810",
  TransactionCanceledException: "com.amazonaws.dynamodb.v20120810",
  TransactionConflictException: "com.amazonaws.dynamodb.v20120810",
  IdempotentParameterMismatchException: "com.amazonaws.dynamodb.v20120810",
  LimitExceededException: "com.amazonaws.dynamodb.v20120810",
  ItemCollectionSizeLimitExceededException: "com.amazonaws.dynamodb.v20120810",
  InternalServerError: "com.amazonaws.dynamodb.v20120810",
  ServiceUnavailableException: "com.amazonaws.dynamodb.v20120810",
} as const;

export type DynamoErrorType = keyof typeof NAMESPACES;

/** What a `KvError` thrown by this face carries as its cause: DynamoDB's name for it, and more fields of its body. */
export class DynamoFault extends Error {
  constructor(
    readonly type: DynamoErrorType,
    /** More members of the error's JSON body (`Item`, `CancellationReasons`). */
    readonly extra?: Readonly<Record<string, unknown>>,
  ) {
    super(type);
  }

  /** `__type` of the error's JSON body. */
  get qualifiedType(): string {
    return `${NAMESPACES[this.type]}#${this.type}`;
  }
}

/** Cairn's code for each exception (what the error is, to anything but this face's clients). */
const CODES: Partial<Record<DynamoErrorType, KvErrorCode>> = {
  MissingAuthenticationTokenException: "UNAUTHORIZED",
  IncompleteSignatureException: "UNAUTHORIZED",
  InvalidSignatureException: "UNAUTHORIZED",
  UnrecognizedClientException: "UNAUTHORIZED",
  AccessDeniedException: "FORBIDDEN",
  ResourceNotFoundException: "NOT_FOUND",
  ResourceInUseException: "ALREADY_EXISTS",
  SerializationException: "INVALID_JSON",
  InternalServerError: "INTERNAL",
  ServiceUnavailableException: "UNAVAILABLE",
};

/** An error DynamoDB would answer `type` with. */
export function dynamoError(
  type: DynamoErrorType,
  message: string,
  extra?: Readonly<Record<string, unknown>>,
): KvError {
  return new KvError(CODES[type] ?? "INVALID_ARGUMENT", message, {
    cause: new DynamoFault(type, extra),
  });
}

/** `ValidationException` with `message`: what most bad input is answered with. */
export const validation = (message: string): KvError => dynamoError("ValidationException", message);

/** DynamoDB's exception for an error that did not name one (Cairn's own errors on the way). */
export function faultOf(error: KvError): DynamoFault {
  if (error.cause instanceof DynamoFault) return error.cause;
  switch (error.code) {
    case "UNAUTHORIZED":
      return new DynamoFault("UnrecognizedClientException");
    case "FORBIDDEN":
      return new DynamoFault("AccessDeniedException");
    case "INVALID_JSON":
      return new DynamoFault("SerializationException");
    case "NOT_FOUND":
      return new DynamoFault("ResourceNotFoundException");
    case "UNAVAILABLE":
      return new DynamoFault("ServiceUnavailableException");
    case "INTERNAL":
      return new DynamoFault("InternalServerError");
    default:
      return new DynamoFault("ValidationException");
  }
}

/** The HTTP status DynamoDB sends an exception with: 500 and 503 for its own faults, 400 else. */
export function statusOf(fault: DynamoFault): number {
  if (fault.type === "InternalServerError") return 500;
  if (fault.type === "ServiceUnavailableException") return 503;
  return 400;
}
