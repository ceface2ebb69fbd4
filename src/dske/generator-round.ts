/**
 * One generator round (docs/dske.md): a fresh secret, AMD-encoded and split into one Shamir share per
 * usable hub, SHARE_PUT to every hub in parallel; once k acknowledged, KEY_OFFER (with our key
 * confirmation) to the recoverer; on its KEY_RESULT OK with a matching confirmation, the key is held
 * and installed, the recoverer is told (KEY_SYNC, the commit) and the shares are deleted from the hubs.
 * Everything else fails the round (the previous key stays). Secrets are wiped after use.
 * @module
 */
import { fromHex, toHex } from "../encoding.ts";
import {
  decodePeerFrame,
  encodePeerFrame,
  FrameError,
  FrameType,
  HubStatus,
  KEY_ID_LEN,
  type KeyOffer,
  type KeyResult,
  KeyResultStatus,
  MAC_KEY_LEN,
} from "./frames.ts";
import { checkConfirmation, confirmationTag, type ConfirmContext } from "./key-confirm.ts";
import { type HubLink, HubReplyError } from "./hub-client.ts";
import { HubDeclined } from "./hub-pool.ts";
import { makeShares } from "./recover.ts";
import { PEER_TIMEOUT_MS, SECRET_BYTES, SHARE_TTL_MAX_S, SHARE_TTL_MIN_S } from "./agreement-types.ts";
import type { AgreementCore, PairState, RoundOutcome } from "./agreement-core.ts";
import { abortForPsrd, sync } from "./peer-frames.ts";

/** What one round works with. */
interface Round {
  readonly core: AgreementCore;
  readonly pair: PairState;
  readonly epoch: number;
  readonly keyId: Uint8Array;
  readonly secret: Uint8Array;
  readonly ctx: ConfirmContext;
}

/**
 * One generator round for `pair`: "agreed" when both sides hold the new key and we installed it,
 * "peer-exhausted" when the recoverer has no PSRD left, "exhausted" when ours is used up (no further
 * round), else "failed".
 */
export async function runGeneratorRound(core: AgreementCore, pair: PairState): Promise<RoundOutcome> {
  const { k } = core.o;
  const p = pair.peer;
  if (!pair.auth) {
    return core.roundFailed(pair, `peer ${p.name} has a public key no node ↔ node key can be derived from`);
  }
  if (core.hubs.links.length < k) {
    return core.roundFailed(pair, `only ${core.hubs.links.length} hub(s) with PSRD, k = ${k}`);
  }
  const hubs = core.hubs.usable(core.hubs.links, "generator");
  if (hubs.length < k) {
    core.failClosed(pair, hubs.length, core.hubs.links.length);
    pair.status.failed++;
    abortForPsrd(core, pair);
    return "exhausted";
  }
  const epoch = core.nextEpoch(pair);
  const keyId = core.ports.random(KEY_ID_LEN);
  const secret = core.ports.random(SECRET_BYTES);
  const ctx: ConfirmContext = {
    keyId,
    epoch,
    generatorPeer: core.o.selfPublicKey,
    recovererPeer: p.publicKey,
  };
  const round: Round = { core, pair, epoch, keyId, secret, ctx };
  try {
    const acked = await putShares(round, hubs);
    if (acked.length < k) {
      return core.roundFailed(
        pair,
        `only ${acked.length} of ${hubs.length} hubs stored a share (k = ${k})`,
        epoch,
      );
    }
    const result = await offer(round, acked);
    if (typeof result === "string") return result;
    const outcome = judgeResult(round, result, acked.map((a) => a.hubId));
    if (outcome !== "agreed") return outcome;
    return commit(round, hubs, acked);
  } finally {
    secret.fill(0);
  }
}

/** SHARE_PUT to every hub in parallel; the hubs that stored their share (at least k, or all that did). */
async function putShares(r: Round, hubs: HubLink[]): Promise<{ hubId: string; x: number }[]> {
  const { core, pair, epoch, keyId } = r;
  const k = core.o.k;
  const shares = makeShares(r.secret, k, hubs.map((h) => h.hubId).sort(), core.ports.random);
  const ttlS = Math.min(
    SHARE_TTL_MAX_S,
    Math.max(SHARE_TTL_MIN_S, Math.ceil((3 * core.o.rotationIntervalMs) / 1000)),
  );
  try {
    return await core.hubs.firstK(
      hubs.map((hub) => async () => {
        const share = shares.find((s) => s.hubId === hub.hubId)!;
        const block = core.ports.psrd.block(hub.blockId)!;
        const reply = await core.hubs.request(hub, {
          type: FrameType.SHARE_PUT,
          clientId: fromHex(block.clientId),
          hubId: fromHex(hub.hubId),
          keyId,
          generatorPeer: core.o.selfPublicKey,
          recovererPeer: pair.peer.publicKey,
          epoch,
          ttlS,
          x: share.x,
          k,
          n: hubs.length,
          share: share.share,
        });
        if (reply?.type === FrameType.SHARE_PUT_ACK && reply.status !== HubStatus.OK) {
          throw new HubDeclined(`declined SHARE_PUT (status ${reply.status})`);
        }
        if (reply?.type !== FrameType.SHARE_PUT_ACK) {
          throw new HubReplyError(
            `SHARE_PUT not accepted (status ${(reply as { status?: number })?.status})`,
          );
        }
        return { hubId: hub.hubId, x: share.x };
      }),
      hubs,
      (got) => got.length >= k,
    );
  } finally {
    for (const s of shares) s.share.fill(0);
  }
}

/** KEY_OFFER to the recoverer: its KEY_RESULT for this round, or the round's outcome when there is none. */
async function offer(r: Round, acked: { hubId: string; x: number }[]): Promise<KeyResult | RoundOutcome> {
  const { core, pair, epoch, keyId } = r;
  const p = pair.peer;
  const auth = pair.auth!;
  const frame: KeyOffer = {
    type: FrameType.KEY_OFFER,
    keyId,
    epoch,
    generatorPeer: core.o.selfPublicKey,
    recovererPeer: p.publicKey,
    k: core.o.k,
    n: acked.length, // the frame's n is the length of the hub list: the hubs that stored a share
    expiresMs: core.ports.clock.now() + PEER_TIMEOUT_MS,
    confirm: confirmationTag(r.secret, "generator", r.ctx),
    hubs: acked.map((a) => ({ hubId: fromHex(a.hubId), x: a.x })),
  };
  let result;
  try {
    const raw = await core.ports.peer(p, encodePeerFrame(frame, auth.send), PEER_TIMEOUT_MS, true);
    result = decodePeerFrame(raw!, auth.receive);
  } catch (e) {
    if (e instanceof FrameError) core.reject(`answer from ${p.name}: ${e.message}`);
    return core.roundFailed(
      pair,
      `peer ${p.name} did not complete the exchange: ${(e as Error).message}`,
      epoch,
    );
  }
  if (
    result.type !== FrameType.KEY_RESULT || toHex(result.keyId) !== toHex(keyId) || result.epoch !== epoch
  ) {
    core.reject(`answer from ${p.name} is not the KEY_RESULT of this round`);
    return core.roundFailed(
      pair,
      `peer ${p.name} answered something other than KEY_RESULT for this key`,
      epoch,
    );
  }
  return result;
}

/** What the recoverer's KEY_RESULT means: "agreed" when it holds our key (confirmation checked). */
function judgeResult(r: Round, result: KeyResult, usedHubs: string[]): RoundOutcome {
  const { core, pair, epoch } = r;
  const p = pair.peer;
  if (result.status === KeyResultStatus.CONFIRMATION_FAILED) {
    const forged = result.badHubs.map(toHex);
    pair.status.failed++;
    core.confirmationFailed(
      pair,
      epoch,
      forged.length > 0 ? forged : usedHubs,
      `peer ${p.name} reconstructed a key that does not match this one: shares forged by ` +
        `${forged.length > 0 ? forged.length : "k or more"} colluding hub(s)?`,
    );
    return "failed";
  }
  core.hubsMisbehaved(pair, epoch, result.badHubs.map(toHex));
  if (result.status === KeyResultStatus.PSRD_LOW) {
    pair.status.failed++;
    core.closeForPsrd(
      pair,
      `PSRD exhausted: peer ${p.name} has too little PSRD left with its hubs to recover a ` +
        `key (KEY_RESULT PSRD_LOW): aes0 gate closed (fail closed); provision new PSRD`,
      epoch,
    );
    return "peer-exhausted";
  }
  if (result.status !== KeyResultStatus.OK) {
    if (result.status === KeyResultStatus.VALIDATION_FAILED) {
      pair.status.problem = `peer ${p.name} found the shares of epoch ${epoch} inconsistent (hubs ${
        core.hubs.texts(usedHubs)
      })`;
    }
    return core.roundFailed(pair, `peer ${p.name} could not recover: status ${result.status}`, epoch);
  }
  if (!checkConfirmation(r.secret, "recoverer", r.ctx, result.confirm)) {
    pair.status.failed++;
    core.confirmationFailed(
      pair,
      epoch,
      usedHubs,
      `the confirmation from ${p.name} does not match this key: it holds another one`,
    );
    return "failed";
  }
  return "agreed";
}

/** Hold and install the confirmed key, tell the recoverer (the commit), delete the shares on the hubs. */
function commit(r: Round, hubs: HubLink[], acked: { hubId: string; x: number }[]): RoundOutcome {
  const { core, pair, epoch, keyId } = r;
  pair.held.add(epoch, keyId, r.secret);
  if (!core.o.install(pair.peer.publicKey, r.secret, epoch)) {
    return core.roundFailed(pair, "the gate refused the agreed key", epoch);
  }
  core.installed(pair, epoch, `as generator via ${acked.length} hubs`);
  pair.psrdClosed = false; // the peer has PSRD again (e.g. restarted with a new block)
  void sync(core, pair).catch(() => {}); // the commit: the recoverer installs what we installed
  for (const a of acked) {
    const hub = hubs.find((h) => h.hubId === a.hubId)!;
    const block = core.ports.psrd.block(hub.blockId)!;
    if (block.txRemaining < MAC_KEY_LEN) continue; // optional: the TTL clears shares anyway
    core.hubs.notify(hub, {
      type: FrameType.SHARE_DELETE,
      clientId: fromHex(block.clientId),
      hubId: fromHex(hub.hubId),
      keyId,
    });
  }
  return "agreed";
}
