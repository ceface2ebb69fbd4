/**
 * A client's authenticated exchange with one security hub: seal a request from the client's C2H
 * region (the offset is persisted before the frame leaves), send it over TCP 51831 inside wg0, and
 * accept the reply only if it comes from the hub's H2C region of the same block, at or above
 * `rx_next`, with a valid one-time tag (then `rx_next` is persisted before the caller acts).
 * @module
 */
import { fromHex, toHex } from "../encoding.ts";
import {
  type FrameError,
  type HubMessage,
  openHubFrame,
  padLength,
  peekHubFrame,
  sealHubFrame,
} from "./frames.ts";
import { requestFrame } from "./frame-transport.ts";
import type { BlockInfo, PsrdStore } from "./psrd-store.ts";
import { parseEndpoint } from "../uapi/netaddr.ts";

/** One hub as a client sees it. */
export interface HubLink {
  /** Hub id, hex. */
  hubId: string;
  /** The hub's wg0 address. */
  host: string;
  /** TCP port (51831). */
  port: number;
  /** The client's PSRD block with this hub, hex. */
  blockId: string;
  /** The hub's name in the node's config, for messages (the id's first 8 hex digits when absent). */
  name?: string;
}

/** How messages name a hub: its config name, else the first 8 hex digits of its id. */
export function hubLabel(hub: Pick<HubLink, "hubId" | "name">): string {
  return hub.name ?? hub.hubId.slice(0, 8);
}

/** A hub answered with something we cannot accept. */
export class HubReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HubReplyError";
  }
}

/** Carries one frame to `hostname:port` and returns the reply frame (`requestFrame`'s signature). */
export type FrameSender = typeof requestFrame;

/**
 * Sends `request` to the hub and returns its authenticated reply (or null when `expectReply` is
 * false). Throws PsrdExhausted (from the store), TransportError or HubReplyError. `send` carries the
 * frame: TCP by default, in memory in tests.
 */
export async function hubRequest(
  store: PsrdStore,
  hub: HubLink,
  request: HubMessage,
  timeoutMs: number,
  expectReply = true,
  send: FrameSender = requestFrame,
): Promise<HubMessage | null> {
  const blockId = fromHex(hub.blockId);
  const { offset, pad } = store.reserveTx(hub.blockId, padLength(request));
  let frame: Uint8Array;
  try {
    frame = sealHubFrame(request, blockId, offset, pad);
  } finally {
    pad.fill(0);
  }
  const reply = await send(hub.host, hub.port, frame, timeoutMs, expectReply);
  if (!reply) return null;
  let peek;
  try {
    peek = peekHubFrame(reply);
  } catch (e) {
    throw new HubReplyError(
      `hub ${hubLabel(hub)} sent a malformed reply (${(e as FrameError).code ?? "?"})`,
    );
  }
  if (toHex(peek.blockId) !== hub.blockId) {
    throw new HubReplyError(`hub ${hubLabel(hub)} replied for another block`);
  }
  if (!store.canAccept(hub.blockId, peek.offset, peek.used)) {
    throw new HubReplyError(`hub ${hubLabel(hub)} reply offset is below rx_next (replay?)`);
  }
  const rxPad = store.rxPad(hub.blockId, peek.offset, peek.used);
  let msg: HubMessage;
  try {
    msg = openHubFrame(reply, rxPad);
  } catch (e) {
    throw new HubReplyError(`hub ${hubLabel(hub)} reply refused (${(e as FrameError).code ?? "?"})`);
  } finally {
    rxPad.fill(0);
  }
  store.acceptRx(hub.blockId, peek.offset, peek.used);
  return msg;
}

/**
 * Hub links for every client-role block whose hub endpoint address is one of `hubWgIps` (the hubs'
 * wg0 addresses); with several blocks for one hub, the one with most bytes left to send.
 */
export function hubLinksFor(blocks: BlockInfo[], hubWgIps: string[]): Map<string, HubLink> {
  const links = new Map<string, HubLink>();
  for (const ip of hubWgIps) {
    let best: { block: BlockInfo; port: number } | null = null;
    for (const block of blocks) {
      const ep = block.role === "client" ? parseEndpoint(block.hubEndpoint) : null;
      if (ep?.ip !== ip) continue;
      if (!best || block.txRemaining > best.block.txRemaining) best = { block, port: ep.port };
    }
    if (best) {
      links.set(ip, { hubId: best.block.hubId, host: ip, port: best.port, blockId: best.block.blockId });
    }
  }
  return links;
}
