/**
 * The router side of site-to-site on a real kernel, in namespaces tfsr-r (the router node), tfsr-lan
 * (a host on its LAN), tfsr-far (the far end of a tunnel interface: a veth named like a tunnel, with
 * aes0's reduced MTU) and tfsr-wan (somewhere the LAN must not be forwarded to). The part runs in the
 * router through site_router_agent.ts. Checks: only the per-interface switches of the LAN and the
 * tunnel go on (never ip_forward or IPv6's all), LAN ↔ tunnel traffic flows in both families while
 * LAN → WAN stays unforwarded, a left-over table is replaced, SYNs into the tunnel get the clamped MSS,
 * masquerade lets the far end reach a LAN host with no route back, a flushed ruleset gets the table
 * back, and after close — and after a
 * failed start, and after a crash and the next run — every switch is back and the table is gone.
 * Needs root, ip, nft and tcpdump.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot } from "../helpers/prereq.ts";
import { type Netns, type Proc, Topology, vethPair, waitUntil } from "../helpers/netns.ts";

const AGENT = new URL("./site_router_agent.ts", import.meta.url).pathname;

/** The router's interfaces: the LAN, the stand-in tunnel (as aes0 would be named), the WAN. */
const LAN = "lan0", TUNNEL = "tfa0", WAN = "wan0";
/** aes0's MTU with the default wg0 MTU (1420 − 60), and the MSS it leaves for TCP over IPv4. */
const TUNNEL_MTU = 1360, CLAMPED_MSS = TUNNEL_MTU - 40;
const LAN_HOST = "10.61.1.2", FAR_HOST = "100.127.61.2", WAN_HOST = "10.61.9.2";
const LAN_HOST6 = "fd61:1::2", FAR_HOST6 = "fd61:aa::2";

/** Every switch the part may touch, and the global ones it must not. */
const SWITCHES = [
  `net/ipv4/conf/${LAN}/forwarding`,
  `net/ipv4/conf/${TUNNEL}/forwarding`,
  `net/ipv6/conf/${LAN}/force_forwarding`,
  `net/ipv6/conf/${TUNNEL}/force_forwarding`,
  `net/ipv4/conf/${WAN}/forwarding`,
  "net/ipv4/ip_forward",
  "net/ipv6/conf/all/forwarding",
];

function agent(args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--quiet", AGENT, ...args];
}

function options(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    lan: LAN,
    tunnels: [TUNNEL],
    mssClamp: true,
    masqueradeSources: [],
    stateDir: null,
    ...extra,
  });
}

async function switches(r: Netns): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of SWITCHES) out[key] = (await r.exec(["cat", `/proc/sys/${key}`])).stdout.trim();
  return out;
}

/** Whether `ns` gets an echo reply from `ip` (any of three: the first may wait for neighbour discovery). */
async function reaches(ns: Netns, ip: string): Promise<boolean> {
  return (await ns.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", ip], { check: false })).code === 0;
}

async function table(r: Netns): Promise<string | null> {
  const res = await r.exec(["nft", "list", "table", "inet", "twofold"], { check: false });
  return res.code === 0 ? res.stdout : null;
}

/** Starts the part in the router; resolves once it is up (or fails the test with its output). */
async function startRouter(r: Netns, extra: Record<string, unknown> = {}): Promise<Proc> {
  const proc = r.spawn(agent(["run", options(extra)]));
  assert.ok(await waitUntil(() => proc.exited || proc.output().includes('"ready"'), 20_000), "agent up");
  assert.ok(!proc.exited, proc.output());
  return proc;
}

async function stopRouter(proc: Proc): Promise<void> {
  await proc.kill("SIGTERM");
  assert.equal(proc.exitCode, 0, proc.output());
  assert.match(proc.output(), /"closed"/);
}

/** The last JSON line a one-shot agent run printed. */
async function agentResult(ns: Netns, args: string[]): Promise<{ event: string; message?: string }> {
  const res = await ns.exec(agent(args), { check: false });
  const line = res.stdout.trim().split("\n").pop() ?? "";
  assert.ok(line.startsWith("{"), `agent ${args[0]} printed nothing: ${res.stderr}`);
  return JSON.parse(line);
}

/** The MSS of the first SYN the far end sees after a LAN host connects to it. */
async function synMss(lan: Netns, far: Netns): Promise<number> {
  const capture = far.spawn([
    "tcpdump",
    "-i",
    "far0",
    "-nn",
    "-v",
    "-c",
    "1",
    "-l",
    "tcp[tcpflags] & tcp-syn != 0",
  ]);
  assert.ok(
    await waitUntil(() => capture.exited || capture.output().includes("listening on"), 10_000),
    "tcpdump up",
  );
  await agentResult(lan, ["connect", FAR_HOST, "9"]);
  assert.ok(await capture.waitFor(5_000), `tcpdump saw a SYN: ${capture.output()}`);
  const m = capture.output().match(/mss (\d+)/);
  assert.ok(m, capture.output());
  return Number(m[1]);
}

async function buildTopology(topo: Topology): Promise<{ r: Netns; lan: Netns; far: Netns; wan: Netns }> {
  const r = await topo.netns("tfsr-r", { replaceExisting: true });
  const lan = await topo.netns("tfsr-lan", { replaceExisting: true });
  const far = await topo.netns("tfsr-far", { replaceExisting: true });
  const wan = await topo.netns("tfsr-wan", { replaceExisting: true });
  await vethPair(r, LAN, "10.61.1.1/24", lan, "eth0", `${LAN_HOST}/24`);
  await vethPair(r, TUNNEL, "100.127.61.1/24", far, "far0", `${FAR_HOST}/24`);
  await vethPair(r, WAN, "10.61.9.1/24", wan, "eth0", `${WAN_HOST}/24`);
  const sh = (ns: Netns, script: string) => ns.exec(["sh", "-ec", script]);
  await sh(
    r,
    `ip link set ${TUNNEL} mtu ${TUNNEL_MTU}
     ip addr add fd61:1::1/64 dev ${LAN} nodad; ip addr add fd61:aa::1/64 dev ${TUNNEL} nodad
     echo 0 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv6/conf/all/forwarding
     for i in ${LAN} ${TUNNEL} ${WAN}; do echo 0 > /proc/sys/net/ipv6/conf/$i/force_forwarding; done`,
  );
  await sh(
    lan,
    `ip addr add ${LAN_HOST6}/64 dev eth0 nodad
     ip route add default via 10.61.1.1; ip -6 route add default via fd61:1::1`,
  );
  await sh(
    far,
    `ip link set far0 mtu ${TUNNEL_MTU}; ip addr add ${FAR_HOST6}/64 dev far0 nodad
     ip route add 10.61.1.0/24 via 100.127.61.1; ip -6 route add fd61:1::/64 via fd61:aa::1`,
  );
  await sh(wan, "ip route add default via 10.61.9.1");
  return { r, lan, far, wan };
}

integrationTest(
  "site router: per-interface forwarding LAN <-> tunnel, confinement, MSS clamp, masquerade, all undone",
  [requireRoot(), requireBinary("ip"), requireBinary("nft"), requireBinary("tcpdump")],
  async (t) => {
    const topo = new Topology();
    try {
      const { r, lan, far, wan } = await buildTopology(topo);
      const before = await switches(r);
      assert.ok(Object.values(before).every((v) => v === "0"), JSON.stringify(before));
      assert.equal(await reaches(lan, FAR_HOST), false, "nothing forwards before start");

      await t.step(
        "start: only the LAN's and the tunnel's switches, a left-over table replaced",
        async () => {
          await r.exec(["nft", "add table inet twofold; add chain inet twofold stale"]);
          const router = await startRouter(r);
          try {
            const on = await switches(r);
            for (const key of SWITCHES.slice(0, 4)) assert.equal(on[key], "1", key);
            for (const key of SWITCHES.slice(4)) assert.equal(on[key], "0", `${key} untouched`);
            const listed = await table(r);
            assert.ok(listed !== null, "table inet twofold exists");
            assert.match(listed, /chain forward \{/);
            assert.match(listed, /tcp option maxseg size set rt mtu/);
            assert.doesNotMatch(listed, /chain stale|postrouting/);

            assert.ok(await reaches(lan, FAR_HOST), "LAN -> tunnel (IPv4)");
            assert.ok(await reaches(far, LAN_HOST), "tunnel -> LAN (IPv4)");
            assert.ok(await reaches(lan, FAR_HOST6), "LAN -> tunnel (IPv6)");
            assert.ok(await reaches(far, LAN_HOST6), "tunnel -> LAN (IPv6)");
            assert.equal(await reaches(lan, WAN_HOST), false, "LAN -> WAN is not forwarded");

            assert.equal(
              await synMss(lan, far),
              CLAMPED_MSS,
              "the SYN into the tunnel carries the clamped MSS",
            );

            await lan.exec(["ip", "route", "del", "default"]);
            assert.equal(
              await reaches(far, LAN_HOST),
              false,
              "no masquerade: a LAN host without a route back",
            );
            await lan.exec(["ip", "route", "add", "default", "via", "10.61.1.1"]);
          } finally {
            await stopRouter(router);
          }
          assert.deepEqual(await switches(r), before, "every switch back");
          assert.equal(await table(r), null, "table gone");
          assert.equal(await reaches(lan, FAR_HOST), false, "nothing forwards after close");
        },
      );

      await t.step("a firewall reload that flushes the ruleset: the table comes back", async () => {
        const router = await startRouter(r);
        try {
          await r.exec(["nft", "flush", "ruleset"]);
          assert.ok(
            await waitUntil(() => router.output().includes('"table-restored"'), 10_000),
            router.output(),
          );
          assert.match((await table(r)) ?? "", /tcp option maxseg size set rt mtu/);
          assert.equal(await reaches(lan, WAN_HOST), false, "confined again");
        } finally {
          await stopRouter(router);
        }
        assert.equal(await table(r), null);
      });

      await t.step("the WAN stayed dark because of the confinement, not by accident", async () => {
        // The replies arrive on the WAN interface, so both switches must be on for a round trip.
        const set = (value: number) =>
          r.exec([
            "sh",
            "-c",
            `for i in ${LAN} ${WAN}; do echo ${value} > /proc/sys/net/ipv4/conf/$i/forwarding; done`,
          ]);
        await set(1);
        try {
          assert.ok(await reaches(lan, WAN_HOST), "with the switches on and no table, LAN -> WAN forwards");
        } finally {
          await set(0);
        }
      });

      await t.step("masquerade: the far end reaches a LAN host that has no route back", async () => {
        await lan.exec(["ip", "route", "del", "default"]);
        const router = await startRouter(r, { masqueradeSources: ["100.127.61.0/24"] });
        try {
          assert.match((await table(r)) ?? "", /oifname "lan0" ip saddr 100\.127\.61\.0\/24 masquerade/);
          assert.ok(await reaches(far, LAN_HOST), "masqueraded onto the LAN");
        } finally {
          await stopRouter(router);
          await lan.exec(["ip", "route", "add", "default", "via", "10.61.1.1"]);
        }
        assert.deepEqual(await switches(r), before);
        assert.equal(await table(r), null);
      });

      await t.step("after a crash, the next run puts back the values from before the crash", async () => {
        const stateDir = await Deno.makeTempDir({ prefix: "tfsr-state-" });
        try {
          const crashed = await startRouter(r, { stateDir });
          await crashed.kill("SIGKILL");
          assert.equal((await switches(r))[SWITCHES[0]], "1", "the crash left forwarding on");
          assert.ok((await table(r)) !== null, "and the table in place");
          const next = await startRouter(r, { stateDir });
          assert.ok(await reaches(lan, FAR_HOST), "the next run forwards");
          assert.equal(await reaches(lan, WAN_HOST), false, "confined as before the crash");
          await stopRouter(next);
          assert.deepEqual(await switches(r), before, "the values from before the crash");
          assert.equal(await table(r), null);
          assert.deepEqual([...Deno.readDirSync(stateDir)], [], "no saved values left");
        } finally {
          await Deno.remove(stateDir, { recursive: true });
        }
      });

      await t.step("a start that fails half-way leaves nothing behind", async () => {
        const res = await agentResult(r, ["fail-after-writes", "2", options()]);
        assert.equal(res.event, "failed");
        assert.match(
          res.message ?? "",
          /^site: cannot write 1 to \/proc\/sys\/net\/ipv6\/conf\/lan0\/force_forwarding \(injected failure\); /,
        );
        assert.deepEqual(await switches(r), before);
        assert.equal(await table(r), null);
      });

      await t.step("a LAN interface that does not exist: one line, nothing changed", async () => {
        const res = await agentResult(r, ["run", options({ lan: "nolan0" })]);
        assert.equal(res.event, "failed");
        assert.equal(
          res.message,
          'site.lan: there is no interface "nolan0" on this host; name the LAN interface (ip link) in site.lan',
        );
        assert.deepEqual(await switches(r), before);
        assert.equal(await table(r), null);
      });
      void wan;
    } finally {
      await topo.cleanup();
    }
  },
);
