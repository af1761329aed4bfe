export type { Backend } from "./backends/backend.js";
export type { Duration } from "./codec/duration.js";
export type { KvKey, KvKeyPart } from "./codec/key-codec.js";
export { KvU64 } from "./codec/kv-u64.js";
export { KvV8Value } from "./codec/kv-v8-value.js";
export { KvNow } from "./codec/server-time.js";
export type { Database } from "./engine/database.js";
export { KvError, type KvErrorCode } from "./kv-error.js";
export { limits } from "./limits.js";
export type { KvWhere } from "./protocol/where-filter.js";
export { AtomicOperation, type KvMutation, type KvWriteKey } from "./sdk/atomic-operation.js";
export { DEFAULT_PATH, Kv, type KvOptions, openKv } from "./sdk/kv.js";
export type {
  KvListIterator,
  KvListOptions,
  KvListSelector,
  KvPage,
  KvPaginateOptions,
  KvPrefixListOptions,
} from "./sdk/kv-list-iterator.js";
export type {
  KvTransaction,
  KvTransactionOptions,
  KvTransactionResult,
} from "./sdk/kv-transaction.js";
export type {
  KvDeadLetter,
  KvDeadLetterQueue,
  KvEnqueueOptions,
  KvListenQueueOptions,
  KvQueueListener,
  KvQueueMessage,
} from "./sdk/queue.js";
export type {
  KvIndex,
  KvIndexOptions,
  KvSearchOptions,
  KvSearchResults,
  KvTokenizer,
} from "./sdk/search.js";
export type * from "./sdk/types.js";
export type {
  KvWatchCallback,
  KvWatchHandle,
  KvWatchInfo,
  KvWatchOptions,
} from "./sdk/watch.js";
