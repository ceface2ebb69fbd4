/**
 * A 100 MB TCP transfer through the double tunnel of two `twofold up` nodes (namespaces tfx-a,
 * tfx-b; wg0 over a veth pair, aes0 inside wg0) arrives with the SHA-256 of its source: with the
 * offloads on (the default), the sender's TUN hands over super-packets larger than the path MTU that
 * the send path splits, and the receiver's TUN takes coalesced ones; with TWOFOLD_OFFLOADS=off, one
 * packet per system call as before. The TUN counters show which happened (a super-packet counts as
 * one packet of many bytes). With the aes0 → wg0 in-process hand-off (the default) aes0's datagrams
 * do not pass wg0's TUN; with TWOFOLD_HANDOFF=off (also run here, offloads on) all of them do. Needs
 * root, /dev/net/tun, iproute2 and wg.
 */
import assert from "node:assert/strict";
import { denoBin } from "../helpers/deno.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { type LabNode, labNodeAt, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genPresharedKey } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";

const AGENT = new URL("./tcp_transfer_agent.ts", import.meta.url).pathname;
const BYTES = 100 * 1024 * 1024;
const PORT = 5201;
/** aes0's MTU with the default wg0 MTU of 1420. */
const AES_MTU = 1360;

const A: LabNode = labNodeAt("node-a", 1);
const B: LabNode = labNodeAt("node-b", 2);

/** A TUN's kernel counters: tx = what the kernel handed to twofold, rx = what twofold wrote. */
async function tunStats(ns: Netns, dev: string): Promise<{ tx: [number, number]; rx: [number, number] }> {
  const [link] = JSON.parse((await ns.exec(["ip", "-s", "-j", "link", "show", "dev", dev])).stdout);
  const s = link.stats64;
  return { tx: [s.tx.bytes, s.tx.packets], rx: [s.rx.bytes, s.rx.packets] };
}

/** `wg show aes0 transfer` of the one peer: [rx, tx] bytes as the device counts them. */
async function aesTransfer(ns: Netns): Promise<[number, number]> {
  const line = (await ns.exec(["wg", "show", "aes0", "transfer"])).stdout.trim().split("\n")[0];
  const [, rx, tx] = line.split("\t");
  return [Number(rx), Number(tx)];
}

/** Bytes per packet between two counter readings. */
function perPacket(after: [number, number], before: [number, number]): number {
  return (after[0] - before[0]) / Math.max(1, after[1] - before[1]);
}

/** Runs one transfer a → b over aes0; returns the two agents' reports. */
async function transfer(a: Netns, b: Netns, seed: number): Promise<{ sent: string; received: string }> {
  const sink = b.spawn([denoBin(), "run", "-A", AGENT, "sink", B.aesIp, String(PORT)]);
  const listening = await waitUntil(() => sink.exited || /listening/.test(sink.output()), 20_000);
  assert.ok(listening && !sink.exited, `sink did not start:\n${sink.output()}`);
  const source = a.spawn([
    denoBin(),
    "run",
    "-A",
    AGENT,
    "source",
    B.aesIp,
    String(PORT),
    String(BYTES),
    String(seed),
  ]);
  const [sourceCode, sinkCode] = await Promise.all([source.wait(), sink.wait()]);
  assert.equal(sourceCode, 0, `source failed:\n${source.output()}`);
  assert.equal(sinkCode, 0, `sink failed:\n${sink.output()}`);
  return { sent: lastLine(source.output()), received: lastLine(sink.output()) };
}

function lastLine(out: string): string {
  return out.trim().split("\n").at(-1) ?? "";
}

integrationTest(
  "offloads: 100 MB over TCP through the double tunnel arrive intact, with and without offloads",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("wg")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfx-" });
    try {
      const a = await topo.netns("tfx-a", { replaceExisting: true });
      const b = await topo.netns("tfx-b", { replaceExisting: true });
      await vethPair(a, "tfx-va", `${A.underlay}/24`, b, "tfx-vb", `${B.underlay}/24`);
      const pskFile = `${dir}/a-b.psk`;
      await Deno.writeTextFile(pskFile, genPresharedKey() + "\n", { mode: 0o600 });
      const cfgA = await writeNodeConfig(dir, A, [B], { pskFile });
      const cfgB = await writeNodeConfig(dir, B, [A], { pskFile });

      const cases = [
        { mode: "auto", handoff: "on" },
        { mode: "off", handoff: "on" },
        { mode: "auto", handoff: "off" },
      ] as const;
      for (const [k, { mode, handoff }] of cases.entries()) {
        await t.step(
          `offloads ${mode}, hand-off ${handoff}: the SHA-256 of what arrived is the source's`,
          async () => {
            const env = { TWOFOLD_OFFLOADS: mode, TWOFOLD_HANDOFF: handoff };
            const procA = await startTwofoldUp(a, cfgA, { env });
            const procB = await startTwofoldUp(b, cfgB, { env });
            try {
              const wanted = mode === "auto" ? /offloads TSO/ : /offloads off/;
              assert.match(procA.output(), wanted, "the start-up line names the offloads in force");
              const opened = await waitUntil(
                async () => (await ping(a, B.aesIp, { count: 1, timeoutS: 1 })).received === 1,
                15_000,
              );
              assert.ok(opened, `aes0 did not open:\nA: ${procA.output()}\nB: ${procB.output()}`);
              const sentBefore = await tunStats(a, "aes0");
              const recvBefore = await tunStats(b, "aes0");
              const [, txBefore] = await aesTransfer(a);
              const [rxBefore] = await aesTransfer(b);
              const wgSentBefore = await tunStats(a, "wg0");
              const wgRecvBefore = await tunStats(b, "wg0");
              const started = Date.now();
              const r = await transfer(a, b, k + 1);
              const seconds = (Date.now() - started) / 1000;
              const sent = JSON.parse(r.sent);
              const received = JSON.parse(r.received);
              assert.equal(sent.bytes, BYTES);
              assert.equal(received.bytes, BYTES, "every byte arrived");
              assert.equal(received.sha256, sent.sha256, "what arrived is what was sent");
              // wg show counts sealed/opened messages once each, whatever GSO/GRO batched them into: the
              // data plus per-packet headers and tags, well under twice the data.
              const txBytes = (await aesTransfer(a))[1] - txBefore;
              const rxBytes = (await aesTransfer(b))[0] - rxBefore;
              for (const [what, v] of [["node-a aes0 tx", txBytes], ["node-b aes0 rx", rxBytes]] as const) {
                assert.ok(v > BYTES && v < BYTES * 1.2, `${what}: ${v} bytes for ${BYTES} of data`);
              }
              const readSize = perPacket((await tunStats(a, "aes0")).tx, sentBefore.tx);
              const writeSize = perPacket((await tunStats(b, "aes0")).rx, recvBefore.rx);
              const wgSentAfter = await tunStats(a, "wg0");
              const wgRecvAfter = await tunStats(b, "wg0");
              const wgRead = perPacket(wgSentAfter.tx, wgSentBefore.tx);
              const wgWrite = perPacket(wgRecvAfter.rx, wgRecvBefore.rx);
              // Through the kernel, every aes0 datagram crosses wg0's TUN (the sender's reads, the receiver's
              // writes); handed off, (almost) none do: a full hand-off ring may send a few the kernel's way.
              const wgTunBytes = [
                wgSentAfter.tx[0] - wgSentBefore.tx[0],
                wgRecvAfter.rx[0] - wgRecvBefore.rx[0],
              ];
              for (const v of wgTunBytes) {
                if (handoff === "on") {
                  assert.ok(v < BYTES * 0.05, `hand-off on: ${v} bytes crossed wg0's TUN`);
                } else assert.ok(v > BYTES, `hand-off off: only ${v} bytes crossed wg0's TUN`);
              }
              console.log(
                `offloads ${mode}, hand-off ${handoff}: aes0 ${
                  readSize.toFixed(0)
                } B per TUN read (sender), ` +
                  `${writeSize.toFixed(0)} B per TUN write (receiver); wg0 ${wgRead.toFixed(0)} / ` +
                  `${wgWrite.toFixed(0)} B; ${seconds.toFixed(1)} s (information only, not asserted)`,
              );
              if (mode === "auto") {
                assert.ok(
                  readSize > AES_MTU,
                  "the sender's TUN handed over super-packets larger than the MTU",
                );
                assert.ok(writeSize > AES_MTU, "the receiver wrote coalesced super-packets");
              } else {
                assert.ok(readSize <= AES_MTU && writeSize <= AES_MTU, "no super-packets with offloads off");
              }
            } finally {
              await procA.kill("SIGTERM");
              await procB.kill("SIGTERM");
            }
          },
        );
      }
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
