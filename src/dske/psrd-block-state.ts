/**
 * The records of the PSRD pools, pure: one block's state (`state.json`: ids, region lengths, the
 * watermarks and how far scrubbing got) and the ingest record (`ingested.json`: every block id ever
 * ingested), their JSON form and their fail-closed parsing, and the region geometry (which part of a
 * block's pad each side sends from). `psrd-store-files.ts` reads and writes them; `psrd-store.ts`
 * decides what changes.
 * @module
 */
import { isValidHubEndpoint, type PsrdRole } from "./psrd-file.ts";

/** A stored block as seen by one side. Offsets and lengths are relative to the region's start. */
export interface BlockInfo {
  /** Block id (32 hex digits). */
  blockId: string;
  /** The side this store plays for the block. */
  role: PsrdRole;
  /** Hub id (hex). */
  hubId: string;
  /** Client id (hex). */
  clientId: string;
  /** The client's WireGuard public key (hex). */
  peerId: string;
  /** Where the client reaches the hub (HOST:PORT). */
  hubEndpoint: string;
  /** Next offset this side consumes in its send region. */
  txNext: number;
  /** Lowest offset this side accepts in its receive region. */
  rxNext: number;
  /** Bytes left in the send region. */
  txRemaining: number;
  /** Bytes left in the receive region. */
  rxRemaining: number;
  /** Length of the send region (C2H for a client, H2C for a hub). */
  txLen: number;
  /** Length of the receive region (H2C for a client, C2H for a hub). */
  rxLen: number;
}

/** One block's state file, in memory: what a crash must never lose (watermarks only ever rise). */
export interface BlockState {
  /** Block id (32 hex digits), also its directory's name. */
  blockId: string;
  /** The side this store plays for the block. */
  role: PsrdRole;
  /** Hub id (hex). */
  hubId: string;
  /** Client id (hex). */
  clientId: string;
  /** The client's WireGuard public key (hex). */
  peerId: string;
  /** Where the client reaches the hub (HOST:PORT). */
  hubEndpoint: string;
  /** Length of the client-to-hub region (first in the pad). */
  c2hLen: number;
  /** Length of the hub-to-client region (after C2H in the pad). */
  h2cLen: number;
  /** Next offset this side sends from, in its send region. */
  txNext: number;
  /** Lowest offset this side accepts, in its receive region. */
  rxNext: number;
  /** Send-region bytes below this offset are zero on disk. */
  txScrubbed: number;
  /** Receive-region bytes below this offset are zero on disk. */
  rxScrubbed: number;
}

/** A block id as a directory name and in the ingest record: 32 lower-case hex digits. */
export const BLOCK_NAME = /^[0-9a-f]{32}$/;

/** Where this side's send region starts in the pad (a client sends C2H, first). */
export function txBase(s: BlockState): number {
  return s.role === "client" ? 0 : s.c2hLen;
}

/** Where this side's receive region starts in the pad. */
export function rxBase(s: BlockState): number {
  return s.role === "client" ? s.c2hLen : 0;
}

/** Length of this side's send region. */
export function txLen(s: BlockState): number {
  return s.role === "client" ? s.c2hLen : s.h2cLen;
}

/** Length of this side's receive region. */
export function rxLen(s: BlockState): number {
  return s.role === "client" ? s.h2cLen : s.c2hLen;
}

/** What callers see of a block's state (no scrub marks; remaining bytes worked out). */
export function blockInfo(s: BlockState): BlockInfo {
  return {
    blockId: s.blockId,
    role: s.role,
    hubId: s.hubId,
    clientId: s.clientId,
    peerId: s.peerId,
    hubEndpoint: s.hubEndpoint,
    txNext: s.txNext,
    rxNext: s.rxNext,
    txRemaining: txLen(s) - s.txNext,
    rxRemaining: rxLen(s) - s.rxNext,
    txLen: txLen(s),
    rxLen: rxLen(s),
  };
}

/** The text of a block's `state.json`. */
export function stateJson(s: BlockState): string {
  return JSON.stringify({
    version: 1,
    block_id: s.blockId,
    role: s.role,
    hub_id: s.hubId,
    client_id: s.clientId,
    peer_id: s.peerId,
    hub_endpoint: s.hubEndpoint,
    c2h_len: s.c2hLen,
    h2c_len: s.h2cLen,
    tx_next: s.txNext,
    rx_next: s.rxNext,
    tx_scrubbed: s.txScrubbed,
    rx_scrubbed: s.rxScrubbed,
  }) + "\n";
}

/** Parses a state file; returns a description of the first problem instead of a state when invalid. */
export function parseState(text: string, blockId: string): BlockState | string {
  let o: Record<string, unknown>;
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return "not a JSON object";
    o = v;
  } catch {
    return "not valid JSON";
  }
  const int = (k: string) => typeof o[k] === "number" && Number.isSafeInteger(o[k]) && (o[k] as number) >= 0;
  const hex = (k: string, len: number) =>
    typeof o[k] === "string" && new RegExp(`^[0-9a-f]{${len}}$`).test(o[k]);
  if (o.version !== 1) return `"version" is not 1`;
  if (o.block_id !== blockId) return `"block_id" does not match the directory name`;
  if (o.role !== "client" && o.role !== "hub") return `"role" is not client or hub`;
  for (const [k, len] of [["hub_id", 32], ["client_id", 32], ["peer_id", 64]] as const) {
    if (!hex(k, len)) return `"${k}" is not ${len} hex digits`;
  }
  if (typeof o.hub_endpoint !== "string" || !isValidHubEndpoint(o.hub_endpoint)) {
    return `"hub_endpoint" is invalid`;
  }
  for (const k of ["c2h_len", "h2c_len", "tx_next", "rx_next", "tx_scrubbed", "rx_scrubbed"]) {
    if (!int(k)) return `"${k}" is not a non-negative integer`;
  }
  const s: BlockState = {
    blockId,
    role: o.role,
    hubId: o.hub_id as string,
    clientId: o.client_id as string,
    peerId: o.peer_id as string,
    hubEndpoint: o.hub_endpoint,
    c2hLen: o.c2h_len as number,
    h2cLen: o.h2c_len as number,
    txNext: o.tx_next as number,
    rxNext: o.rx_next as number,
    txScrubbed: o.tx_scrubbed as number,
    rxScrubbed: o.rx_scrubbed as number,
  };
  if (s.c2hLen < 1 || s.h2cLen < 1) return "a region length is zero";
  if (s.txNext > txLen(s) || s.rxNext > rxLen(s)) return "a watermark lies beyond its region";
  if (s.txScrubbed > s.txNext || s.rxScrubbed > s.rxNext) return "a scrub mark lies above its watermark";
  return s;
}

/** Parses the ingest record; null when it is not a valid one. */
export function parseIngested(text: string): Set<string> | null {
  try {
    const o = JSON.parse(text);
    if (o?.version !== 1 || !Array.isArray(o.block_ids)) return null;
    const ids = new Set<string>();
    for (const id of o.block_ids) {
      if (typeof id !== "string" || !BLOCK_NAME.test(id)) return null;
      ids.add(id);
    }
    return ids;
  } catch {
    return null;
  }
}

/** The text of the ingest record. */
export function ingestedJson(ids: Set<string>): string {
  return JSON.stringify({ version: 1, block_ids: [...ids].sort() }) + "\n";
}
