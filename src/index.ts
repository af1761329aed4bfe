export type { Backend } from "./backends/backend.js";
export type { Duration } from "./codec/duration.js";
export type { KvKey, KvKeyPart } from "./codec/key-codec.js";
export { KvU64 } from "./codec/kv-u64.js";
export { KvV8Value } from "./codec/kv-v8-value.js";
export { KvNow } from "./codec/server-time.js";
export type { Database } from "./engine/database.js";
export {
  type GliaItem,
  GliaKvStore,
  type GliaOperation,
  type GliaTestAndSetResult,
  gliaKvStoreFactory,
} from "./faces/glia/glia-store.js";
export {
  type HappyContext,
  type HappyItem,
  type HappyMutateResult,
  type HappyMutation,
  type HappyUpdate,
  happyKv,
} from "./faces/happy/happy-store.js";
export { AtomicOperation, type KvMutation, type KvWriteKey } from "./kv/atomic-operation.js";
export type {
  KvListIterator,
  KvListOptions,
  KvListSelector,
  KvPage,
  KvPaginateOptions,
  KvPrefixListOptions,
} from "./kv/kv-list-iterator.js";
export type {
  KvTransaction,
  KvTransactionOptions,
  KvTransactionResult,
} from "./kv/kv-transaction.js";
export { DEFAULT_PATH } from "./kv/local-database.js";
export type {
  KvDeadLetter,
  KvDeadLetterQueue,
  KvEnqueueOptions,
  KvListenQueueOptions,
  KvQueueListener,
  KvQueueMessage,
} from "./kv/queue.js";
export type {
  KvIndex,
  KvIndexOptions,
  KvSearchOptions,
  KvSearchResults,
  KvTokenizer,
} from "./kv/search.js";
export type * from "./kv/types.js";
export type {
  KvWatchCallback,
  KvWatchHandle,
  KvWatchInfo,
  KvWatchOptions,
} from "./kv/watch.js";
export { KvError, type KvErrorCode } from "./kv-error.js";
export { limits } from "./limits.js";
export type { KvWhere } from "./protocol/where-filter.js";
export {
  KVError,
  type KVItem,
  type KVPermission,
  KVStore,
  type KVStoreOptions,
} from "./sdk/floww.js";
export { Kv, type KvOptions, openKv } from "./sdk/kv.js";
