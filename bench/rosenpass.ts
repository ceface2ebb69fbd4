/**
 * Rosenpass micro-bench (`deno run --allow-all bench/rosenpass.ts`): median times of McEliece 460896
 * key generation (round 2 and 4), encapsulation and decapsulation, Kyber-512 round 3, and a full
 * in-process V02 and V03 handshake (InitHello → RespHello → InitConf → EmptyData) between two
 * RosenpassServer instances, plus the per-message processing time on each side.
 *
 * Environment knobs: KEYGEN_N=2 (key generations per round), N=20 (repetitions of the fast operations).
 * @module
 */
import {
  type KemKeyPair,
  kyberDecapsulate,
  kyberEncapsulate,
  kyberKeygen,
} from "../src/rosenpass/kyber512.ts";
import { mcEliece460896, type McElieceRound } from "../src/rosenpass/mceliece.ts";
import { type Profile, PROFILE_V02, PROFILE_V03 } from "../src/rosenpass/profile.ts";
import { type RosenpassAction, RosenpassServer } from "../src/rosenpass/server.ts";

const KEYGEN_N = Number(Deno.env.get("KEYGEN_N") ?? 2);
const N = Number(Deno.env.get("N") ?? 20);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const r = fn();
  return [r, performance.now() - t];
}

function row(name: string, ms: number[]): void {
  console.log(`${name.padEnd(44)} ${median(ms).toFixed(2).padStart(10)} ms  (n=${ms.length})`);
}

function sent(actions: RosenpassAction[]): Uint8Array {
  const send = actions.find((a) => a.kind === "send");
  if (send?.kind !== "send") throw new Error("handshake step sent nothing");
  return send.message;
}

console.log("operation                                     median");
const keyPairs = new Map<McElieceRound, KemKeyPair[]>();
for (const round of [2, 4] as McElieceRound[]) {
  const kem = mcEliece460896(round);
  const gen: number[] = [];
  const pairs: KemKeyPair[] = [];
  for (let i = 0; i < Math.max(2, KEYGEN_N); i++) {
    const [pair, ms] = time(() => kem.keygen());
    gen.push(ms);
    pairs.push(pair);
  }
  keyPairs.set(round, pairs);
  row(`mceliece460896 round ${round} keygen`, gen);
  const enc: number[] = [];
  const dec: number[] = [];
  for (let i = 0; i < N; i++) {
    const [e, msE] = time(() => kem.encapsulate(pairs[0].publicKey));
    enc.push(msE);
    dec.push(time(() => kem.decapsulate(e.ciphertext, pairs[0].secretKey))[1]);
  }
  row(`mceliece460896 round ${round} encaps`, enc);
  row(`mceliece460896 round ${round} decaps`, dec);
}

const kg: number[] = [];
const ke: number[] = [];
const kd: number[] = [];
for (let i = 0; i < N; i++) {
  const [pair, msG] = time(() => kyberKeygen());
  kg.push(msG);
  const [e, msE] = time(() => kyberEncapsulate(pair.publicKey));
  ke.push(msE);
  kd.push(time(() => kyberDecapsulate(e.ciphertext, pair.secretKey))[1]);
}
row("kyber512 round 3 keygen", kg);
row("kyber512 round 3 encaps", ke);
row("kyber512 round 3 decaps", kd);

function handshakes(profile: Profile): void {
  const [ka, kb] = keyPairs.get(profile.mcElieceRound)!;
  const steps = {
    initHello: [] as number[],
    respHello: [] as number[],
    initConf: [] as number[],
    total: [] as number[],
  };
  for (let i = 0; i < N; i++) {
    const a = new RosenpassServer({ profile, secretKey: ka.secretKey, publicKey: ka.publicKey });
    const b = new RosenpassServer({ profile, secretKey: kb.secretKey, publicKey: kb.publicKey });
    a.addPeer({ id: "b", publicKey: kb.publicKey });
    b.addPeer({ id: "a", publicKey: ka.publicKey });
    const start = performance.now();
    const [ih, t1] = time(() => sent(a.initiate("b", 0)));
    const [rh, t2] = time(() => sent(b.handleMessage(0, ih)));
    const [ic, t3] = time(() => sent(a.handleMessage(0, rh)));
    const ed = sent(b.handleMessage(0, ic));
    a.handleMessage(0, ed);
    steps.total.push(performance.now() - start);
    steps.initHello.push(t1);
    steps.respHello.push(t2);
    steps.initConf.push(t3);
  }
  row(`${profile.name} initiator: build InitHello`, steps.initHello);
  row(`${profile.name} responder: InitHello → RespHello`, steps.respHello);
  row(`${profile.name} initiator: RespHello → InitConf`, steps.initConf);
  row(`${profile.name} full handshake, in process`, steps.total);
}
handshakes(PROFILE_V02);
handshakes(PROFILE_V03);
