/**
 * What wg0 and aes0 share of the data plane in `twofold up` (docs/offload.md): one pair of
 * data-plane workers serving both devices' paths, and the aes0 → wg0 in-process hand-off channel.
 * Started before wg0 and closed after aes0 and wg0 (parts close newest first), so the workers and the
 * channel's wake eventfds outlive every device path using them. `TWOFOLD_HANDOFF=off` leaves the
 * channel out: aes0's datagrams then cross the kernel's UDP stack, as with `twofold wg` stacks (the
 * worker pair is still shared).
 * @module
 */
import { envChoice } from "../env.ts";
import type { Logger } from "../log.ts";
import { HandoffChannel } from "../wireguard/dataplane/handoff-channel.ts";
import { DataplaneWorkers } from "../wireguard/dataplane/worker-pair.ts";
import type { NodePart } from "./part.ts";

/** The running shared data plane. */
export interface SharedDataplane {
  /** The worker pair both devices' paths run in. */
  workers: DataplaneWorkers;
  /** The hand-off channel both devices' paths share, or null (`TWOFOLD_HANDOFF=off`). */
  channel: HandoffChannel | null;
  /** Ends the workers and closes the channel's wake eventfds. */
  close(): Promise<void>;
}

/** The shared data-plane part. */
export function sharedDataplanePart(log: Logger): NodePart<SharedDataplane> {
  return {
    name: "data-plane workers",
    start: () => {
      const handoffOff = envChoice("TWOFOLD_HANDOFF") === "off";
      if (handoffOff) {
        log.debug(
          "aes0 → wg0 in-process hand-off off (TWOFOLD_HANDOFF=off): aes0 datagrams cross the kernel",
        );
      }
      const channel = handoffOff ? null : HandoffChannel.create();
      const workers = new DataplaneWorkers();
      return {
        workers,
        channel,
        close: async () => {
          await workers.close();
          channel?.closeWakeFds();
        },
      };
    },
  };
}
