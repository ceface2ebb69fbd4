/**
 * Node ↔ node frames outside a round's offer and result (docs/dske.md): accepting a frame only from a
 * peer's address with a valid tag under the pair's key and dispatching it; KEY_SYNC, which exchanges
 * the epochs of the held keys and moves both sides to the newest both hold (or closes a gate open for a
 * key the peer lacks); and KEY_ABORT, with which a generator whose PSRD ran out tells its recoverer.
 * @module
 */
import { toHex } from "../encoding.ts";
import {
  decodePeerFrame,
  encodePeerFrame,
  FrameError,
  FrameType,
  MAX_SYNC_EPOCHS,
  type PeerMessage,
} from "./frames.ts";
import { reconcileTarget } from "./held-keys.ts";
import {
  ABORT_PSRD_EXHAUSTED,
  PEER_TIMEOUT_MS,
  START_SYNC_PAUSE_MS,
  START_SYNC_TRIES,
  SYNC_MAX_SKEW_MS,
} from "./agreement-types.ts";
import type { AgreementCore, PairState } from "./agreement-core.ts";
import { handleOffer } from "./recoverer-round.ts";

/**
 * The peer channel: accepts a frame only from a peer's wg0 address (`sourceHost`) with a valid tag under
 * that pair's key, then dispatches it. Everything else is dropped and counted.
 */
export async function handlePeerFrame(
  core: AgreementCore,
  frame: Uint8Array,
  sourceHost: string,
): Promise<Uint8Array | "close"> {
  const source = core.o.expectedSource ?? ((p) => p.wgIp);
  const pair = [...core.pairs.values()].find((x) => source(x.peer) === sourceHost);
  if (!pair?.auth) {
    core.reject(`from ${sourceHost}, not a DSKE peer's wg0 address`);
    return "close";
  }
  const peer = pair.peer;
  let msg: PeerMessage;
  try {
    msg = decodePeerFrame(frame, pair.auth.receive);
  } catch (e) {
    if (!(e instanceof FrameError)) throw e;
    core.reject(`from ${peer.name} (${sourceHost}): ${e.message}`);
    return "close";
  }
  switch (msg.type) {
    case FrameType.KEY_ABORT:
      onAbort(core, pair, msg.keyId, msg.epoch, msg.reason);
      return "close";
    case FrameType.KEY_SYNC:
      return onSync(core, pair, msg.timeMs, msg.epochs);
    case FrameType.KEY_OFFER:
      return await handleOffer(core, pair, msg);
    default:
      core.reject(`from ${peer.name}: unexpected frame type ${msg.type}`);
      return "close";
  }
}

/** Sends our held epochs to the peer and reconciles with its answer. Throws TransportError / FrameError. */
export async function sync(core: AgreementCore, pair: PairState): Promise<void> {
  const p = pair.peer;
  if (!pair.auth || core.closed) return;
  const raw = await core.ports.peer(
    p,
    encodePeerFrame(syncFrame(core, pair), pair.auth.send),
    PEER_TIMEOUT_MS,
    true,
  );
  let reply: PeerMessage;
  try {
    reply = decodePeerFrame(raw!, pair.auth.receive);
  } catch (e) {
    if (e instanceof FrameError) core.reject(`KEY_SYNC answer from ${p.name}: ${e.message}`);
    throw e;
  }
  if (reply.type !== FrameType.KEY_SYNC || !fresh(core, reply.timeMs)) {
    core.reject(`KEY_SYNC answer from ${p.name} is not a fresh KEY_SYNC`);
    return;
  }
  reconcileWith(core, pair, reply.epochs);
}

/** Start-up: tell the peer we hold no keys (it closes a gate open for a key we lost), a few tries. */
export async function startSync(core: AgreementCore, pair: PairState): Promise<void> {
  for (let i = 0; i < START_SYNC_TRIES && !core.closed; i++) {
    try {
      await sync(core, pair);
      return;
    } catch {
      await core.pause(START_SYNC_PAUSE_MS);
    }
  }
}

/** Tells the recoverer (best effort) that no further key will come: it closes its gate too. */
export function abortForPsrd(core: AgreementCore, pair: PairState): void {
  // No agreed key with it in this run: its gate closes at the maximum age anyway.
  if (!pair.lastKeyId || !pair.auth || pair.installed === null) return;
  const frame = encodePeerFrame(
    { type: FrameType.KEY_ABORT, keyId: pair.lastKeyId, epoch: pair.installed, reason: ABORT_PSRD_EXHAUSTED },
    pair.auth.send,
  );
  core.ports.peer(pair.peer, frame, PEER_TIMEOUT_MS, false).catch(() => {});
}

function syncFrame(core: AgreementCore, pair: PairState): PeerMessage {
  return {
    type: FrameType.KEY_SYNC,
    timeMs: core.ports.clock.now(),
    epochs: pair.held.epochs().slice(-MAX_SYNC_EPOCHS),
  };
}

function fresh(core: AgreementCore, timeMs: number): boolean {
  return Math.abs(core.ports.clock.now() - timeMs) <= SYNC_MAX_SKEW_MS;
}

/** A KEY_SYNC request from the peer: reconcile with its epochs, answer with ours. */
function onSync(
  core: AgreementCore,
  pair: PairState,
  timeMs: number,
  epochs: number[],
): Uint8Array | "close" {
  if (!fresh(core, timeMs)) {
    core.reject(
      `KEY_SYNC from ${pair.peer.name} with a clock ${core.ports.clock.now() - timeMs} ms off (replay?)`,
    );
    return "close";
  }
  reconcileWith(core, pair, epochs);
  return encodePeerFrame(syncFrame(core, pair), pair.auth!.send);
}

/** Moves to the newest epoch both hold (install it), or closes a gate open for a key the peer lacks. */
function reconcileWith(core: AgreementCore, pair: PairState, theirs: number[]): void {
  const p = pair.peer;
  const r = reconcileTarget(pair.held.epochs(), theirs, pair.installed);
  if (r.action === "install") {
    const key = pair.held.get(r.epoch)!;
    const from = pair.installed;
    if (!core.o.install(p.publicKey, key.psk, r.epoch)) return;
    core.installed(pair, r.epoch, `as ${pair.role}, confirmed by the peer`);
    if (from !== null) {
      core.emit({
        type: "epochs-reconciled",
        peer: p.name,
        epoch: r.epoch,
        reason: `moved from epoch ${from} to ${r.epoch}, the newest both sides hold`,
      });
    }
    return;
  }
  if (r.action === "close") {
    const was = pair.installed;
    pair.installed = null;
    const reason = `the peer ${p.name} does not hold key epoch ${was} (it restarted or lost the ` +
      `round) and no newer common key exists: aes0 gate closed until a new key is agreed`;
    core.emit({ type: "epochs-reconciled", peer: p.name, epoch: was ?? undefined, reason });
    core.o.closeGate?.(p.publicKey, reason);
  }
  if (theirs.length === 0 || r.action === "close") core.roundNow(pair);
}

/** An authenticated KEY_ABORT from the peer: acted on only from our generator, for the key agreed with it. */
function onAbort(
  core: AgreementCore,
  pair: PairState,
  keyId: Uint8Array,
  epoch: number,
  reason: number,
): void {
  const last = pair.lastKeyId;
  if (
    reason !== ABORT_PSRD_EXHAUSTED || pair.role === "generator" || !last || toHex(last) !== toHex(keyId) ||
    pair.installed !== epoch
  ) {
    core.reject(`KEY_ABORT from ${pair.peer.name} for a key or epoch not in use, or an unknown reason`);
    return;
  }
  core.closeForPsrd(
    pair,
    `PSRD exhausted: the generator ${pair.peer.name} has no PSRD left for another round ` +
      `(KEY_ABORT): aes0 gate closed (fail closed)`,
  );
}
