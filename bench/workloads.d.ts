/** Types of bench/workloads.js, for bench/deno-kv.ts. */

export type Workload = "E1" | "E2" | "E3" | "E4" | "E5";

export interface CellSpec {
  readonly workload: Workload;
  readonly warmup: number;
  readonly count: number;
}

export interface CellResult {
  readonly count: number;
  readonly seconds: number;
}

/** The part of the Deno KV API the workloads use. */
export interface KvLike {
  set(key: unknown[], value: unknown): Promise<unknown>;
  get(key: unknown[]): Promise<{ key: unknown[]; value: unknown; versionstamp: string | null }>;
  list(selector: { prefix: unknown[] }, options: { limit: number }): AsyncIterable<unknown>;
  atomic(): AtomicLike;
}

export interface AtomicLike {
  check(entry: { key: unknown[]; versionstamp: string | null }): AtomicLike;
  set(key: unknown[], value: unknown): AtomicLike;
  commit(): Promise<{ ok: boolean }>;
}

export declare const VALUE: Readonly<{ v: string }>;
export declare function rewrittenValue(n: number): { v: string };
export declare const PRELOAD_KEYS: number;
export declare const BATCH: number;
export declare function needsPreload(workload: Workload): boolean;
export declare function randomKeys(seed?: number): () => number;
export declare function measure(
  work: (from: number, count: number) => unknown,
  spec: CellSpec,
): Promise<CellResult>;
export declare function setRows(kv: KvLike, from: number, count: number): Promise<void>;
export declare function measureKv(kv: KvLike, spec: CellSpec): Promise<CellResult>;
