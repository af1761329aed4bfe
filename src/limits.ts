/**
 * Every limit Cairn enforces, in one place. The defaults are Deno KV's (see
 * reference/kv-connect.md §5) so that data and programs move between the two unchanged.
 */
export const limits = {
  /** Encoded size of a key that is written. */
  maxWriteKeyBytes: 2048,
  /** Encoded size of a key that is read; one more than writes because range bounds append a byte. */
  maxReadKeyBytes: 2049,
  /** Encoded size of one value. */
  maxValueBytes: 65_536,
  /** Levels of arrays, objects, Maps and Sets in one value (MongoDB allows 100 too). */
  maxValueDepth: 100,
  /** Keys in one `getMany` (and ranges in one snapshot read). */
  maxReadRanges: 10,
  /** Entries one list batch may request. */
  maxReadEntries: 1000,
  /** Checks in one atomic operation. */
  maxChecks: 100,
  /** Mutations in one atomic operation. */
  maxMutations: 1000,
  /** Check keys + mutation keys + values of one atomic operation. */
  maxTotalMutationBytes: 819_200,
  /** Keys of value-carrying mutations in one atomic operation. */
  maxTotalKeyBytes: 81_920,
  /** Default list batch size, and the cap when the batch size is derived from `limit`. */
  defaultListBatch: 100,
  maxDerivedListBatch: 500,
  /** A where filter: conditions plus `$in`/`$nin` values, nesting of `$and`/`$or`/`$not` and objects, path length and parts. */
  maxFilterTerms: 1000,
  maxFilterDepth: 20,
  maxFilterPathLength: 1024,
  maxFilterPathParts: 32,
  /** Full-text search: fields of one index; results of one search (default and maximum). */
  maxIndexFields: 32,
  defaultSearchLimit: 100,
  maxSearchLimit: 1000,
  /** A search query: characters, words and phrases, nesting of parentheses. */
  maxSearchQueryLength: 2048,
  maxSearchTerms: 64,
  maxSearchDepth: 10,
  /** Entries in one `paginate` page: default and maximum (the seed's list limits). */
  defaultPageSize: 100,
  maxPageSize: 1000,
  /** Commits grouped into one storage transaction at most. */
  maxGroupCommit: 512,
  /** How long a client may take to send a request's headers (ms), and the whole request. */
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 300_000,
  /**
   * How long a new connection may take to show which protocol it speaks (ms): the first bytes of
   * a cleartext connection, a TLS handshake, an HTTP/2 client's first SETTINGS frame.
   */
  handshakeTimeoutMs: 10_000,
  /**
   * How long a connection with no request in progress stays open (ms): HTTP/1.1 between requests,
   * an HTTP/2 session without open streams (an open watch stream keeps its session).
   */
  idleTimeoutMs: 65_000,
  /** Connections one server process holds open; one more is answered 503 and closed. */
  maxConnections: 10_000,
  /** Size of a request body the server reads (an atomic operation at its limits fits, base64 included). */
  maxRequestBytes: 4 * 1024 * 1024,
  /**
   * Named databases (`/db/<name>`) one server keeps open while idle; past it, the least recently
   * used idle ones close (any number stay open while requests use them).
   */
  maxOpenNamedDatabases: 100,
  /** A named database no request has used for this long (ms) is closed, and reopened on demand. */
  namedDatabaseIdleMs: 60_000,
  /** The TTL sweeper runs at least this often (ms), and removes at most `sweepBatch` keys per run. */
  sweepIntervalMs: 60_000,
  sweepBatch: 1000,
  /** Change records are kept this long (ms; the default of the `changeRetention` option) … */
  changeRetentionMs: 3_600_000,
  /** … and at most this many of the newest. */
  maxRetainedChanges: 1_000_000,
  /** Key ranges one change-feed subscription may follow. */
  maxFeedRanges: 100,
  /** Changes read per page of the change feed. */
  feedPageChanges: 1000,
  /** Keys one KV Connect watch may name (Deno's limit). */
  maxWatchKeys: 10,
  /**
   * Bytes a streamed response may have waiting for a client that reads slower than it is sent
   * to; past it the connection is closed. Watch streams resume from their last event id, so the
   * client loses nothing by reconnecting.
   */
  maxStreamBacklogBytes: 8 * 1024 * 1024,
  /** Watch streams and feed subscriptions get a heartbeat this often (ms). */
  watchHeartbeatMs: 5000,
  /** Queue message defaults and bounds (Deno's; reference/kv-connect.md §1.7, §9). */
  defaultBackoffSchedule: [100, 1000, 5000, 30_000, 60_000] as readonly number[],
  maxBackoffIntervals: 10,
  maxBackoffIntervalMs: 3_600_000,
  maxEnqueueDelayMs: 30 * 24 * 3_600_000,
  maxKeysIfUndelivered: 10,
  /** How long a consumer holds a message before it is delivered again (renewed while handled). */
  defaultLeaseMs: 30_000,
  /** How long one claim request may wait for a message. */
  maxClaimWaitMs: 30_000,
  /** Messages one claim may lease. */
  maxClaimMessages: 100,
  /** Characters of a failed message's error text that are kept (a nack's, a handler's). */
  maxErrorTextLength: 4096,
  /** Keys in one batch get (`kv.get([...keys])`, a transaction's, the JSON API's and the SDK wire's). */
  maxBatchKeys: 1000,
  /** Entries a JSON API list, page or search returns by default, and at most. */
  defaultListLimit: 100,
  maxListLimit: 1000,
  /** How long KV Connect's metadata answer and its data-path token stay valid (ms); clients refresh well before. */
  kvConnectMetadataTtlMs: 24 * 3_600_000,
  /**
   * How old (ms) a server's copy of a principal may be before a request reads it again: a token
   * revoked on one server is refused on every other within this time.
   */
  tokenCacheMs: 500,
  /** Principals (and names tried) a server keeps read; past it the copies are dropped and read again. */
  maxCachedPrincipals: 10_000,
  /**
   * The longest TTL (ms) a write may give, about 31,700 years: its expiry must fit storage's
   * 64-bit integers and a `Date`.
   */
  maxExpireInMs: 1e15,
  /** How long (ms) Happy Server's update events are kept for clients resuming their stream. */
  happyUpdateRetentionMs: 3_600_000,
  /** Keys one grouped storage read (the server's concurrent point reads, merged) asks for at most. */
  maxGroupedReadKeys: 1000,
  /** DynamoDB: an item's size as DynamoDB counts it (names and values), and a Query's or Scan's page. */
  dynamoMaxItemBytes: 400 * 1024,
  dynamoMaxPageBytes: 1024 * 1024,
  /** DynamoDB: keys of one BatchGetItem, requests of one BatchWriteItem, items of one transaction. */
  dynamoMaxBatchGetKeys: 100,
  dynamoMaxBatchWriteRequests: 25,
  dynamoMaxTransactItems: 100,
  /** DynamoDB: a request's body (BatchWriteItem's 16 MB), and a transaction's items together. */
  dynamoMaxRequestBytes: 16 * 1024 * 1024,
  dynamoMaxTransactionBytes: 4 * 1024 * 1024,
  /**
   * DynamoDB: what one commit may hold: a transaction's 100 items, a check of each table and
   * its idempotency token there, and each item's entries in up to 25 indexes (deleted and written).
   */
  dynamoCommit: {
    maxChecks: 300,
    maxMutations: 5200,
    maxTotalMutationBytes: 256 * 1024 * 1024,
    maxTotalKeyBytes: 64 * 1024 * 1024,
  },
  /** How long (ms) a closing server waits for its connections' responses before cutting them. */
  closeDeadlineMs: 10_000,
  /** How often (ms) persistent metrics are written to the database (the seed's `metrics.flushInterval`). */
  metricsFlushIntervalMs: 30_000,
} as const;
