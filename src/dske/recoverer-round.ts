/**
 * The recoverer's side of a round (docs/dske.md): an authenticated KEY_OFFER from our generator for a
 * newer epoch → SHARE_GET from the usable hubs it lists → reconstruction, accepted only when the key
 * matches the generator's confirmation → the key held (not installed: the generator's KEY_SYNC commits
 * it; without one in time, we ask) and KEY_RESULT with our confirmation. A failed reconstruction is
 * answered with its status and reported (`key-confirmation-failed`, `shares-inconsistent`,
 * `rotation-failed`); PSRD too low for a round is answered PSRD_LOW and closes the gate.
 * @module
 */
import { fromHex, toHex } from "../encoding.ts";
import {
  encodePeerFrame,
  FrameType,
  type HubMessage,
  HubStatus,
  type KeyOffer,
  KeyResultStatus,
} from "./frames.ts";
import { checkConfirmation, CONFIRM_TAG_LEN, confirmationTag, type ConfirmContext } from "./key-confirm.ts";
import { hubLabel, type HubLink, HubReplyError } from "./hub-client.ts";
import { HubDeclined } from "./hub-pool.ts";
import { PsrdExhausted } from "./psrd-store.ts";
import { type HubShare, type RecoverResult, recoverSecret } from "./recover.ts";
import { COMMIT_WAIT_MS } from "./agreement-types.ts";
import type { AgreementCore, PairState } from "./agreement-core.ts";
import { sync } from "./peer-frames.ts";

/** A hub the offer lists and we can ask, with the share's x-coordinate. */
interface OfferedHub {
  link: HubLink;
  x: number;
}

/** Builds the KEY_RESULT answers of one offer (or "close": the test fault that loses it). */
type Answer = (status: number, bad?: string[], confirm?: Uint8Array) => Uint8Array | "close";

/** Recoverer: a KEY_OFFER from the generator of `pair`; the KEY_RESULT to answer, or "close". */
export async function handleOffer(
  core: AgreementCore,
  pair: PairState,
  msg: KeyOffer,
): Promise<Uint8Array | "close"> {
  const peer = pair.peer;
  const peerHex = toHex(peer.publicKey);
  if (
    pair.role === "generator" || toHex(msg.generatorPeer) !== peerHex ||
    toHex(msg.recovererPeer) !== core.selfHex || msg.k !== core.o.k || msg.expiresMs < core.ports.clock.now()
  ) {
    core.reject(`KEY_OFFER from ${peer.name} for another pair, another k, or expired`);
    return "close"; // not a pair we recover for, or stale: say nothing
  }
  const newest = Math.max(pair.status.lastEpoch ?? -1, pair.held.newest() ?? -1);
  if (msg.epoch <= newest) {
    core.reject(`KEY_OFFER from ${peer.name} for epoch ${msg.epoch}, not newer than ${newest} (replay?)`);
    return "close";
  }
  const answer = answerer(core, pair, msg);
  const known = msg.hubs
    .map((h) => ({ link: core.hubs.link(toHex(h.hubId)), x: h.x }))
    .filter((h): h is OfferedHub => h.link !== undefined);
  const usable = new Set(core.hubs.usable(known.map((h) => h.link), "recoverer"));
  const links = known.filter((h) => usable.has(h.link));
  if (known.length >= core.o.k && links.length < core.o.k) {
    core.failClosed(pair, links.length, known.length);
    pair.status.failed++;
    return answer(KeyResultStatus.PSRD_LOW);
  }
  if (links.length < core.o.k) {
    return answerFailed(core, pair, msg, "too few known hubs offered", answer(KeyResultStatus.UNKNOWN_HUB));
  }
  const ctx: ConfirmContext = {
    keyId: msg.keyId,
    epoch: msg.epoch,
    generatorPeer: msg.generatorPeer,
    recovererPeer: msg.recovererPeer,
  };
  const confirm = (secret: Uint8Array) => checkConfirmation(secret, "generator", ctx, msg.confirm);
  const got: HubShare[] = [];
  try {
    const { exhausted } = await fetchShares(core, msg, links, got, confirm);
    const final = got.length >= core.o.k ? recoverSecret(got, core.o.k, { confirm }) : null;
    if (!final || !final.ok) return recoveryFailed(core, pair, msg, final, got, known, exhausted, answer);
    core.hubsMisbehaved(pair, msg.epoch, final.inconsistent);
    // Held, not installed: the generator installs once it checked our confirmation, then commits
    // (KEY_SYNC); if the commit does not come, we ask (below).
    pair.held.add(msg.epoch, msg.keyId, final.secret);
    const tag = confirmationTag(final.secret, "recoverer", ctx);
    final.secret.fill(0);
    pair.status.problem = null;
    pair.psrdClosed = false;
    const waitMs = Math.min(COMMIT_WAIT_MS, core.o.rotationIntervalMs / 2);
    core.after(waitMs, () => {
      if ((pair.installed ?? -1) < msg.epoch) void sync(core, pair).catch(() => {});
    });
    return answer(KeyResultStatus.OK, final.inconsistent, tag);
  } finally {
    for (const g of got) g.share.fill(0);
  }
}

/** The KEY_RESULT builder for `msg` (with the lost-KEY_RESULT test fault). */
function answerer(core: AgreementCore, pair: PairState, msg: KeyOffer): Answer {
  return (status, bad = [], confirm = new Uint8Array(CONFIRM_TAG_LEN)) => {
    if (core.o.dropKeyResults && pair.results++ % 2 === 1) return "close"; // test fault
    return encodePeerFrame({
      type: FrameType.KEY_RESULT,
      keyId: msg.keyId,
      epoch: msg.epoch,
      status,
      confirm,
      badHubs: bad.map(fromHex),
    }, pair.auth!.send);
  };
}

/** Counts a failed round, reports it as `rotation-failed`, and returns `reply`. */
function answerFailed<T>(core: AgreementCore, pair: PairState, msg: KeyOffer, reason: string, reply: T): T {
  pair.status.failed++;
  core.emit({ type: "rotation-failed", peer: pair.peer.name, epoch: msg.epoch, reason });
  return reply;
}

/**
 * SHARE_GET from every hub of `links` in parallel into `got`, until a confirmed key can be made (then
 * the stragglers' time) or all answered. `exhausted` when our PSRD or a hub's ran out on the way.
 */
async function fetchShares(
  core: AgreementCore,
  msg: KeyOffer,
  links: OfferedHub[],
  got: HubShare[],
  confirm: (secret: Uint8Array) => boolean,
): Promise<{ exhausted: boolean }> {
  let exhausted = false;
  await core.hubs.firstK(
    links.map(({ link, x }) => async () => {
      const block = core.ports.psrd.block(link.blockId)!;
      let reply: HubMessage | null;
      try {
        reply = await core.hubs.request(link, {
          type: FrameType.SHARE_GET,
          clientId: fromHex(block.clientId),
          hubId: fromHex(link.hubId),
          keyId: msg.keyId,
          generatorPeer: msg.generatorPeer,
          recovererPeer: msg.recovererPeer,
        });
      } catch (e) {
        if (e instanceof PsrdExhausted) exhausted = true;
        throw e;
      }
      if (reply?.type !== FrameType.SHARE_GET_RESP) {
        throw new HubReplyError("answered SHARE_GET with another message type");
      }
      if (reply.status === HubStatus.PSRD_LOW) {
        // Authenticated: the hub has too little PSRD left to send us a share. Not used again.
        core.hubs.markHubExhausted(link.hubId);
        exhausted = true;
        throw new PsrdExhausted(`hub ${hubLabel(link)} has too little PSRD left to send a share`);
      }
      if (reply.status !== HubStatus.OK || !reply.share) {
        // Not a lie: the share may be gone (deleted once the round succeeded, expired, hub restarted).
        throw new HubDeclined(`declined SHARE_GET (status ${reply.status})`);
      }
      if (
        reply.x !== x || reply.k !== msg.k || reply.epoch !== msg.epoch ||
        toHex(reply.generatorPeer) !== toHex(msg.generatorPeer)
      ) {
        throw new HubReplyError("SHARE_GET answer does not match the offer");
      }
      got.push({ hubId: link.hubId, x, share: reply.share });
      return link.hubId;
    }),
    links.map((l) => l.link),
    () => {
      if (got.length < core.o.k) return false;
      const trial = recoverSecret(got, core.o.k, { confirm });
      if (trial.ok) trial.secret.fill(0);
      return trial.ok;
    },
  );
  return { exhausted };
}

/** No confirmed key from the shares: report why and answer with the matching KEY_RESULT status. */
function recoveryFailed(
  core: AgreementCore,
  pair: PairState,
  msg: KeyOffer,
  final: RecoverResult | null,
  got: HubShare[],
  known: OfferedHub[],
  exhausted: boolean,
  answer: Answer,
): Uint8Array | "close" {
  pair.status.failed++;
  if (final?.ok === false && final.reason === "confirmation-failed") {
    core.confirmationFailed(
      pair,
      msg.epoch,
      final.forged,
      `the key the shares of hubs ${core.hubs.texts(final.forged)} make does not match ` +
        `the generator's confirmation: k or more hubs forged their shares, or gave another round's`,
    );
    return answer(KeyResultStatus.CONFIRMATION_FAILED, final.forged);
  }
  const status = exhausted
    ? KeyResultStatus.PSRD_LOW
    : !final || (!final.ok && final.reason === "not-enough-shares")
    ? KeyResultStatus.NOT_ENOUGH_SHARES
    : KeyResultStatus.VALIDATION_FAILED;
  if (status === KeyResultStatus.VALIDATION_FAILED) {
    core.sharesInconsistent(pair, msg.epoch, got.map((g) => g.hubId));
  } else {
    core.emit({
      type: "rotation-failed",
      peer: pair.peer.name,
      epoch: msg.epoch,
      reason: `recovery failed with ${got.length} share(s) (status ${status})`,
    });
  }
  const inconsistent = final?.inconsistent ?? [];
  for (const bad of inconsistent) core.hubs.markMisbehaving(bad);
  if (exhausted) {
    const left = core.hubs.usable(known.map((h) => h.link), "recoverer").length;
    if (left < core.o.k) core.failClosed(pair, left, known.length);
  }
  return answer(status, inconsistent);
}
