/**
 * Offloads against the real kernel (needs root, /dev/net/tun and `ip`), in namespaces with the
 * prefix `tfoff-`: tests/integration/offload_ns_agent.ts runs inside them and reports JSON lines.
 *
 * - TUN: with IFF_VNET_HDR + TSO a local TCP sender's data comes out of the TUN as super-packets
 *   larger than the MTU, segmentPacket splits them into valid segments (checksums checked by the
 *   tests' own code, payload compared with the source), and a GroBatch super-packet written into the
 *   TUN reaches a local TCP receiver intact.
 * - UDP: one UDP_SEGMENT send arrives in another namespace as separate datagrams, or as one buffer
 *   with the segment size reported when the receiver turned UDP_GRO on.
 */

import assert from "node:assert/strict";
import { denoBin } from "../helpers/deno.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 } from "../../ffi/tun.ts";

const AGENT = new URL("./offload_ns_agent.ts", import.meta.url).pathname;
const checks = [requireRoot(), requireTun(), requireBinary("ip")];

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

async function removeNamespace(name: string): Promise<void> {
  await new Deno.Command("ip", { args: ["netns", "del", name], stdout: "null", stderr: "null" }).output();
}

/** An agent inside a namespace; reports are read line by line. */
class Agent {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stderr: Promise<string>;
  #buffer = "";

  constructor(ns: string, args: string[]) {
    this.#child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, denoBin(), "run", "-A", AGENT, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** The next report, which must be `event`; throws on an error report, exit or timeout. */
  async next(event: string, timeoutMs = 30000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        const msg = JSON.parse(line);
        if (msg.event === "error") throw new Error(`agent: ${msg.message}`);
        if (msg.event !== event) throw new Error(`expected "${event}", got ${line}`);
        return msg;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for "${event}"`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        this.#lines.read(),
        new Promise<null>((r) => timer = setTimeout(() => r(null), left)),
      ]);
      clearTimeout(timer);
      if (chunk === null) continue;
      if (chunk.done) throw new Error(`agent exited before "${event}": ${await this.#stderr}`);
      this.#buffer += chunk.value;
    }
  }

  /** Ends the agent (its own PID) if still running and waits for it. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#child.status;
    await this.#lines.cancel().catch(() => {});
    await this.#stderr.catch(() => "");
  }
}

integrationTest("offload: TUN TSO super-packets split, GRO super-packets delivered", checks, async () => {
  const ns = "tfoff-tun";
  await removeNamespace(ns);
  let agent: Agent | undefined;
  try {
    await ip("netns", "add", ns);
    agent = new Agent(ns, ["tun", "tfofftun0"]);
    const offload = await agent.next("offload");
    const tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    assert.equal((offload.flags as number) & tso, tso, "TUNSETOFFLOAD accepted checksum + TSO4/6");

    const sp = await agent.next("superpacket");
    assert.ok((sp.length as number) > 1420, `a super-packet larger than the MTU was read (${sp.length})`);
    assert.equal(sp.gsoType, 1, "GSO_TCPV4");
    assert.ok((sp.segments as number) >= 2);
    assert.ok((sp.largestSegment as number) <= 1420, "every segment fits the MTU");
    assert.equal(sp.checksumsValid, true, "IPv4 and TCP checksums of every segment verify");
    assert.equal(sp.sequential, true, "sequence numbers advance by the segment size");
    assert.equal(sp.payloadMatchesSource, true, "the segments carry the sender's bytes");

    const gro = await agent.next("gro-delivered");
    assert.equal(gro.writes, 1, "30 segments coalesced into one TUN write");
    assert.equal(gro.superPacketLength, 40 + 30000);
    assert.equal(gro.received, 30000);
    assert.equal(gro.equal, true, "the local receiver got the data byte for byte");
  } finally {
    await agent?.stop();
    await removeNamespace(ns);
  }
});

integrationTest("offload: UDP_SEGMENT send, UDP_GRO receive across namespaces", checks, async (t) => {
  const a = "tfoff-udpa";
  const b = "tfoff-udpb";
  await removeNamespace(a);
  await removeNamespace(b);
  const agents: Agent[] = [];
  try {
    await ip("netns", "add", a);
    await ip("netns", "add", b);
    await ip("link", "add", "tfoffva", "netns", a, "type", "veth", "peer", "name", "tfoffvb", "netns", b);
    await ip("-n", a, "addr", "add", "10.78.0.1/24", "dev", "tfoffva");
    await ip("-n", b, "addr", "add", "10.78.0.2/24", "dev", "tfoffvb");
    await ip("-n", a, "link", "set", "tfoffva", "up");
    await ip("-n", b, "link", "set", "tfoffvb", "up");
    const COUNT = 10;
    const SIZE = 1200;
    for (const gro of [false, true]) {
      await t.step(
        gro ? "UDP_GRO: one buffer, segment size reported" : "without GRO: N datagrams",
        async () => {
          const port = gro ? "47001" : "47000";
          const receiver = new Agent(b, [
            "udp-recv",
            "10.78.0.2",
            port,
            gro ? "1" : "0",
            String(COUNT * SIZE),
          ]);
          agents.push(receiver);
          assert.equal((await receiver.next("ready")).gro, gro);
          const sender = new Agent(a, ["udp-send", "10.78.0.2", port, String(COUNT), String(SIZE)]);
          agents.push(sender);
          const sent = await sender.next("sent");
          assert.equal(sent.supported, true, "the kernel knows UDP_SEGMENT");
          assert.equal(sent.sent, 1, "one message carried all datagrams");
          assert.equal(sent.fallback, false);
          const got = await receiver.next("received");
          assert.equal(got.total, COUNT * SIZE);
          if (gro) {
            assert.ok((got.messages as number) < COUNT, "coalesced on receive");
            const sizes = got.sizes as number[];
            const segs = got.segSizes as number[];
            sizes.forEach((n, i) => {
              if (n > SIZE) assert.equal(segs[i], SIZE, "the cmsg carries the datagram size");
            });
          } else {
            assert.deepEqual(got.sizes, new Array(COUNT).fill(SIZE));
            assert.deepEqual(got.segSizes, new Array(COUNT).fill(0));
          }
        },
      );
    }
  } finally {
    for (const agent of agents) await agent.stop();
    await removeNamespace(a);
    await removeNamespace(b);
  }
});
