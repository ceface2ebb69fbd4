/**
 * Provisioning mistakes a hub's PSRD must not hide (one home for the rules `twofold psrd ingest` and
 * `twofold hub` apply): every hub-role block in one state directory belongs to one hub id, and its hub
 * endpoint is the hub's own wg0 address. A block made for another hub is named with both ids, so the
 * operator can remove it (`twofold psrd remove`). Pure: works on block metadata, never on pad bytes.
 * @module
 */
import { parseEndpoint } from "../uapi/netaddr.ts";

/** The block fields these rules read (a {@link import("./psrd-store.ts").BlockInfo} has them). */
export interface BlockMeta {
  /** Block id, hex. */
  blockId: string;
  /** "client" or "hub". */
  role: "client" | "hub";
  /** Hub id, hex. */
  hubId: string;
  /** The hub's DSKE endpoint, "ip:port". */
  hubEndpoint: string;
}

/** The IP of an endpoint "ip:port" / "[ip6]:port", or null when it is not one. */
export function endpointIp(endpoint: string): string | null {
  return parseEndpoint(endpoint)?.ip ?? null;
}

/**
 * Why a hub state directory holding `existing` must not take `incoming` (a hub-role block), or null.
 * Refused: another hub id than the blocks already there (naming both), and an endpoint whose IP is not
 * `hubAddress` (the hub's wg0 address, when known) or, when it is not known, not the IP the blocks
 * already there name.
 */
export function hubIngestProblem(
  existing: readonly BlockMeta[],
  incoming: BlockMeta,
  hubAddress?: string,
): string | null {
  if (incoming.role !== "hub") return null;
  const hubBlocks = existing.filter((b) => b.role === "hub");
  const other = hubBlocks.find((b) => b.hubId !== incoming.hubId);
  if (other) {
    return `block ${incoming.blockId} is for hub id ${incoming.hubId}, but this state belongs to hub id ` +
      `${other.hubId} (block ${other.blockId}): one hub, one id; ingest it on the hub it was made for`;
  }
  const ip = endpointIp(incoming.hubEndpoint);
  if (hubAddress !== undefined && ip !== hubAddress) {
    return `block ${incoming.blockId} names hub endpoint ${incoming.hubEndpoint}, not this hub's wg0 address ` +
      `${hubAddress}: it was made for another hub`;
  }
  const elsewhere = hubBlocks.find((b) => endpointIp(b.hubEndpoint) !== ip);
  if (hubAddress === undefined && elsewhere) {
    return `block ${incoming.blockId} names hub endpoint ${incoming.hubEndpoint}, but the blocks here name ` +
      `${elsewhere.hubEndpoint} (block ${elsewhere.blockId}): it was made for another hub`;
  }
  return null;
}

/**
 * Why a hub with wg0 address `wgAddress` must not start on `blocks` (its hub-role blocks), or null:
 * more than one hub id (naming each id and its blocks), or a block whose endpoint is another address.
 */
export function hubStartProblem(
  blocks: readonly BlockMeta[],
  wgAddress: string,
  stateDir: string,
): string | null {
  const byId = new Map<string, string[]>();
  for (const b of blocks) byId.set(b.hubId, [...byId.get(b.hubId) ?? [], b.blockId]);
  if (byId.size > 1) {
    const list = [...byId].map(([id, ids]) =>
      `hub id ${id} (block${ids.length > 1 ? "s" : ""} ${ids.join(", ")})`
    );
    return `the PSRD in ${stateDir} belongs to ${byId.size} different hub ids: ${
      list.join("; ")
    }; one hub, ` +
      `one id: remove the blocks made for another hub with "twofold psrd remove --state-dir ${stateDir} BLOCK_ID"`;
  }
  const foreign = blocks.find((b) => endpointIp(b.hubEndpoint) !== wgAddress);
  if (foreign) {
    return `PSRD block ${foreign.blockId} in ${stateDir} names hub endpoint ${foreign.hubEndpoint}, not this ` +
      `hub's wg0 address ${wgAddress}: it was made for another hub; remove it with ` +
      `"twofold psrd remove --state-dir ${stateDir} ${foreign.blockId}"`;
  }
  return null;
}
