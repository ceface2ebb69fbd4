/**
 * aes0 key rotation through the PSK gate, end to end: two `twofold up` nodes in namespaces (tfr-a,
 * tfr-b) with a 2 s rotation interval (so aes0 rekeys every 1 s) and manual keys that expire after 6 s
 * (`keys.manualMaxAgeSeconds`; without it a manual key never expires).
 * Needs root, /dev/net/tun, iproute2, ping and wg.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, type Proc, sleep, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { genKeyPair, genPresharedKey } from "../helpers/wg_device.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";

const A: LabNode = {
  name: "rot-a",
  keys: genKeyPair(),
  underlay: "10.233.0.1",
  wgIp: "100.64.1.1",
  aesIp: "100.127.1.1",
};
const B: LabNode = {
  name: "rot-b",
  keys: genKeyPair(),
  underlay: "10.233.0.2",
  wgIp: "100.64.1.2",
  aesIp: "100.127.1.2",
};

/** What a node's debug log says about its aes0 handshakes, read in order. */
interface HandshakeAudit {
  /** Key epochs of completed handshakes (initiator and responder), in log order. */
  epochs: number[];
  /** Handshakes whose epoch was neither the latest installed key nor the one before it. */
  offKey: string[];
}

/**
 * Replays a node's log: every completed handshake must use the latest installed key epoch or, in the
 * moments when the other side has not installed it yet, the previous one (the grace key).
 */
function auditHandshakes(log: string): HandshakeAudit {
  const audit: HandshakeAudit = { epochs: [], offKey: [] };
  let latest: number | null = null;
  for (const line of log.split("\n")) {
    const installed = line.match(/gate key-installed for \S+ epoch (\d+)/);
    if (installed) latest = Number(installed[1]);
    const hs = line.match(/handshake completed as (?:initiator|responder) under key epoch (\d+)/);
    if (!hs) continue;
    const epoch = Number(hs[1]);
    audit.epochs.push(epoch);
    if (latest === null || (epoch !== latest && epoch !== latest - 1)) {
      audit.offKey.push(`epoch ${epoch} while the latest key was ${latest}: ${line}`);
    }
  }
  return audit;
}

integrationTest(
  "aes0 rotation: zero loss, new keys per handshake, mismatch and max age close",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping"), requireBinary("wg")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfr-" });
    let keyNo = 0;
    /** Writes a fresh PSK file; returns its path. */
    const newPsk = async (): Promise<string> => {
      const path = `${dir}/k${keyNo++}.psk`;
      await Deno.writeTextFile(path, genPresharedKey() + "\n", { mode: 0o600 });
      return path;
    };
    /** Installs a PSK file on one node for its peer through the UAPI (manual key source). */
    const install = (ns: Netns, peer: LabNode, file: string) =>
      ns.exec(["wg", "set", "aes0", "peer", peer.keys.publicKey, "preshared-key", file]);
    try {
      const a = await topo.netns("tfr-a", { replaceExisting: true });
      const b = await topo.netns("tfr-b", { replaceExisting: true });
      await vethPair(a, "tfr-va", `${A.underlay}/24`, b, "tfr-vb", `${B.underlay}/24`);
      const opts = { rotationIntervalSeconds: 2, manualMaxAgeSeconds: 6 };
      const env = { TWOFOLD_LOG: "debug" };
      const logDir = Deno.env.get("TWOFOLD_TEST_LOG_DIR"); // keep the node logs for a post-mortem
      const procA: Proc = await startTwofoldUp(a, await writeNodeConfig(dir, A, [B], opts), {
        env,
        logFile: logDir && `${logDir}/rot-a.log`,
      });
      const procB: Proc = await startTwofoldUp(b, await writeNodeConfig(dir, B, [A], opts), {
        env,
        logFile: logDir && `${logDir}/rot-b.log`,
      });
      const both = async (file: string) => {
        await Promise.all([install(a, B, file), install(b, A, file)]);
      };

      await t.step(
        "PSKs rotated every 2 s for 30 s while pinging every 10 ms: zero loss, new keys used",
        async () => {
          await both(await newPsk()); // epoch 0 opens the gates
          assert.ok(await waitForPing(a, B.aesIp, 5000), "aes0 opens");
          // ping every 10 ms for the whole run; stopped with SIGINT after the last rotation. Loss is
          // any gap in the echo sequence numbers (only the request in flight at the stop may be missing).
          const pinger = a.spawn(["ping", "-n", "-i", "0.01", "-W", "1", B.aesIp], {
            logFile: logDir && `${logDir}/ping.log`,
          });
          const started = Date.now();
          const rotations = 15;
          for (let i = 1; i <= rotations; i++) {
            await sleep(started + i * 2000 - Date.now());
            await both(await newPsk());
          }
          await sleep(started + (rotations + 1) * 2000 - Date.now());
          await pinger.kill("SIGINT");
          const out = pinger.output();
          const seqs = [...out.matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1]));
          const sent = Number(out.match(/(\d+) packets transmitted/)?.[1] ?? NaN);
          const last = Math.max(...seqs);
          const lost = last - new Set(seqs).size;
          const seconds = (Date.now() - started) / 1000;
          assert.ok(seqs.length > 0 && sent - last <= 2, `ping answered until the stop (${last} of ${sent})`);
          const have = new Set(seqs);
          const missing = Array.from({ length: last }, (_, i) => i + 1).filter((q) => !have.has(q));
          assert.equal(lost, 0, `${lost} of ${last} pings lost across ${rotations} rotations: ${missing}`);
          const audits = [auditHandshakes(procA.output()), auditHandshakes(procB.output())];
          for (const audit of audits) assert.deepEqual(audit.offKey, [], "handshakes use the new keys");
          const epochs = [...new Set(audits.flatMap((x) => x.epochs))].sort((x, y) => x - y);
          // At most one initiation per REKEY_TIMEOUT (5 s): a handshake every 2-3 rotations.
          const rotatedUsed = epochs.filter((e) => e >= 1).length;
          assert.ok(rotatedUsed >= 4, `rotated keys used by handshakes: ${epochs.join(", ")}`);
          console.log(
            `${rotations} rotations in ${seconds.toFixed(1)} s; handshakes under key epochs ` +
              `${epochs.join(", ")}; 0/${last} pings lost`,
          );
        },
      );

      await t.step(
        "a wrong PSK on one side stops traffic at the next handshake; fixing it recovers",
        async () => {
          const before = { a: procA.output().length, b: procB.output().length };
          // The side whose initiations fail ends the sessions (the answering side reports the mismatch
          // too, from its unconfirmed responses, but leaves the sessions to the initiator).
          const endsSessions = /PSK mismatch suspected: \d+ consecutive handshake responses failed/;
          const mismatch = () =>
            endsSessions.test(procA.output().slice(before.a)) ||
            endsSessions.test(procB.output().slice(before.b));
          // Traffic keeps the sessions rekeying; both sides keep rotating every 2 s, but node A's keys
          // are not the ones node B has.
          const traffic = a.spawn(["ping", "-q", "-i", "0.1", "-w", "40", B.aesIp]);
          const wrongAt = Date.now();
          for (let i = 1; i <= 15 && !mismatch(); i++) {
            await Promise.all([install(a, B, await newPsk()), install(b, A, await newPsk())]);
            await waitUntil(mismatch, wrongAt + i * 2000 - Date.now(), 100);
          }
          await traffic.kill("SIGINT");
          assert.ok(mismatch(), "the gate reports the mismatch");
          console.log(`mismatch reported ${Date.now() - wrongAt} ms after the keys diverged`);
          const stopped = await ping(a, B.aesIp, { count: 3, interval: 0.3, timeoutS: 1 });
          assert.equal(stopped.received, 0, "no traffic under disagreeing keys");
          assert.ok(
            (await ping(a, B.wgIp, { count: 2, interval: 0.2, timeoutS: 2 })).received === 2,
            "wg0 is unaffected",
          );
          await both(await newPsk());
          const recoveredAt = Date.now();
          assert.ok(await waitForPing(a, B.aesIp, 5000), "the agreed key recovers aes0 without a restart");
          console.log(`aes0 back ${Date.now() - recoveredAt} ms after the fix`);
        },
      );

      await t.step("a manual key past keys.manualMaxAgeSeconds closes the gate (6 s)", async () => {
        const before = procA.output().length;
        const closed = await waitUntil(
          () => /WARN .*gate gate-closed .*past the manual maximum age/.test(procA.output().slice(before)),
          10_000,
          100,
        );
        assert.ok(closed, `the gate closes on age:\n${procA.output().slice(before)}`);
        assert.match(procA.output().slice(before), /WARN .*gate gate-stale/, "it went stale first");
        const r = await ping(a, B.aesIp, { count: 3, interval: 0.3, timeoutS: 1 });
        assert.equal(r.received, 0, "no traffic once the key expired");
      });
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
