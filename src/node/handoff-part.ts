/**
 * The node's aes0 → wg0 in-process hand-off channel (docs/offload.md): created before wg0 (whose
 * workers get it when they start) and closed after aes0 and wg0 (parts close newest first), so its
 * wake eventfds outlive every worker polling them. `TWOFOLD_HANDOFF=off` leaves it out: aes0's
 * datagrams then cross the kernel's UDP stack, as with `twofold wg` stacks.
 * @module
 */
import { envChoice } from "../env.ts";
import type { Logger } from "../log.ts";
import { HandoffChannel } from "../dataplane/handoff-channel.ts";
import type { NodePart } from "./part.ts";

/** The running channel. */
export interface HandoffPart {
  /** The channel both devices' data planes share. */
  channel: HandoffChannel;
  /** Closes the channel's wake eventfds. */
  close(): void;
}

/** The hand-off part: null (no channel) with `TWOFOLD_HANDOFF=off`. */
export function handoffPart(log: Logger): NodePart<HandoffPart | null> {
  return {
    name: "aes0 → wg0 hand-off",
    start: () => {
      if (envChoice("TWOFOLD_HANDOFF") === "off") {
        log.debug(
          "aes0 → wg0 in-process hand-off off (TWOFOLD_HANDOFF=off): aes0 datagrams cross the kernel",
        );
        return null;
      }
      const channel = HandoffChannel.create();
      return { channel, close: () => channel.closeWakeFds() };
    },
  };
}
