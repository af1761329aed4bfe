/** Types of bench/callers.js, for bench/kv-connect-deno.ts. */
import type { KvLike } from "./workloads.js";

export interface CallersSpec {
  readonly workload: "K1" | "K2" | "K3";
  readonly callers: readonly number[];
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface CallersResult {
  readonly callers: number;
  readonly ops: number;
  readonly seconds: number;
  readonly p99Ms: number;
}

/** The part of the Deno KV API the workloads use. */
export interface CallersKv extends KvLike {
  set(key: unknown[], value: unknown): Promise<{ ok: boolean }>;
  getMany(keys: unknown[][]): Promise<{ value: unknown }[]>;
}

export declare const KEYS_PER_GET_MANY: number;
export declare function measureCallers(kv: CallersKv, spec: CallersSpec): Promise<CallersResult[]>;
export declare function preload(kv: CallersKv): Promise<void>;
