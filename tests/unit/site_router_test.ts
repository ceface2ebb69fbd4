/**
 * The router side of site-to-site in memory: the forwarding plan from the switches read, the nftables
 * text, the saved-values file, and the part's order and rollback over a fake kernel.
 */
import assert from "node:assert/strict";
import {
  forwardingKeys,
  IPV6_ALL_FORWARDING,
  planForwarding,
} from "../../src/site-router/forwarding-plan.ts";
import { deleteTableCommands, NFT_TABLE, siteRulesetCommands } from "../../src/site-router/nft-ruleset.ts";
import { formatSavedForwarding, parseSavedForwarding } from "../../src/site-router/saved-forwarding.ts";
import { errorLines } from "../../ffi/nftables.ts";
import { siteRouterProblem } from "../../src/site-router/site-router.ts";
import {
  describeSiteRouter,
  exemptPeersRoute,
  type SiteRouterIo,
  type SiteRouterOptions,
  siteRouterOptions,
  siteRouterPart,
  startSiteRouter,
} from "../../src/node/site-router-part.ts";
import { CliError } from "../../src/operator-error.ts";
import { parseNodeConfig } from "../../src/config/node-config.ts";
import { encodeBase64 } from "../../src/encoding.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { formatCidr, parseCidr } from "../../src/wireguard/allowedips.ts";

const TOPOLOGY = { lan: "eth1", tunnels: ["aes0"] };

/** Every switch of `TOPOLOGY` at `value`, with IPv6's global switch at `all6`. */
function switches(value: string | null, all6 = "0"): Map<string, string | null> {
  const m = new Map<string, string | null>(forwardingKeys(TOPOLOGY).map((k) => [k, value]));
  m.set(IPV6_ALL_FORWARDING, all6);
  return m;
}

Deno.test("forwarding plan", async (t) => {
  await t.step("the keys: per-interface switches of LAN and tunnels, then IPv6's global one", () => {
    assert.deepEqual(forwardingKeys({ lan: "eth1", tunnels: ["aes0", "wg0"] }), [
      "net/ipv4/conf/eth1/forwarding",
      "net/ipv4/conf/aes0/forwarding",
      "net/ipv4/conf/wg0/forwarding",
      "net/ipv6/conf/eth1/force_forwarding",
      "net/ipv6/conf/aes0/force_forwarding",
      "net/ipv6/conf/wg0/force_forwarding",
      "net/ipv6/conf/all/forwarding",
    ]);
  });
  await t.step("nothing forwarded before: both families switched on per interface and confined", () => {
    const plan = planForwarding(TOPOLOGY, switches("0"));
    assert.equal(plan.ipv6, "per-interface");
    assert.deepEqual(plan.writes.map((w) => `${w.key}=${w.value}`), [
      "net/ipv4/conf/eth1/forwarding=1",
      "net/ipv4/conf/aes0/forwarding=1",
      "net/ipv6/conf/eth1/force_forwarding=1",
      "net/ipv6/conf/aes0/force_forwarding=1",
    ]);
    assert.deepEqual(plan.restore.map((w) => `${w.key}=${w.value}`), [
      "net/ipv6/conf/aes0/force_forwarding=0",
      "net/ipv6/conf/eth1/force_forwarding=0",
      "net/ipv4/conf/aes0/forwarding=0",
      "net/ipv4/conf/eth1/forwarding=0",
    ]);
    assert.deepEqual(plan.confinements, [
      { family: 4, iface: "eth1", allowedOut: ["aes0"] },
      { family: 4, iface: "aes0", allowedOut: ["eth1"] },
      { family: 6, iface: "eth1", allowedOut: ["aes0"] },
      { family: 6, iface: "aes0", allowedOut: ["eth1"] },
    ]);
    assert.ok(plan.writes.every((w) => !w.key.includes("/all/") && !w.key.includes("ip_forward")));
  });
  await t.step("a router that already forwards everywhere: nothing to write, nothing confined", () => {
    const plan = planForwarding(TOPOLOGY, switches("1", "1"));
    assert.deepEqual(plan, { writes: [], restore: [], confinements: [], ipv6: "global" });
  });
  await t.step("IPv6 forwarded globally by the operator: only IPv4 is ours", () => {
    const plan = planForwarding(TOPOLOGY, switches("0", "1"));
    assert.equal(plan.ipv6, "global");
    assert.ok(plan.writes.every((w) => w.key.startsWith("net/ipv4/")));
    assert.ok(plan.confinements.every((c) => c.family === 4));
  });
  await t.step("a kernel without force_forwarding: IPv6 unavailable, IPv4 planned", () => {
    const previous = switches("0");
    for (const key of forwardingKeys(TOPOLOGY)) if (key.endsWith("force_forwarding")) previous.set(key, null);
    const plan = planForwarding(TOPOLOGY, previous);
    assert.equal(plan.ipv6, "unavailable");
    assert.deepEqual(plan.writes.map((w) => w.key), [
      "net/ipv4/conf/eth1/forwarding",
      "net/ipv4/conf/aes0/forwarding",
    ]);
  });
  await t.step("only the switches that were off are written, and restored to what they were", () => {
    const previous = switches("0", "0");
    previous.set("net/ipv4/conf/eth1/forwarding", "1");
    previous.set("net/ipv6/conf/aes0/force_forwarding", "0\n");
    const plan = planForwarding(TOPOLOGY, previous);
    assert.ok(!plan.writes.some((w) => w.key === "net/ipv4/conf/eth1/forwarding"));
    assert.ok(!plan.confinements.some((c) => c.family === 4 && c.iface === "eth1"));
    assert.deepEqual(plan.restore.find((w) => w.key === "net/ipv6/conf/aes0/force_forwarding")?.value, "0");
  });
});

const RULESET_INPUT = {
  lan: "eth1",
  tunnels: ["aes0", "wg0"],
  confinements: [
    { family: 4 as const, iface: "eth1", allowedOut: ["aes0", "wg0"] },
    { family: 4 as const, iface: "aes0", allowedOut: ["eth1"] },
  ],
  mssClamp: true,
  masqueradeSources: [parseCidr("100.127.0.0/16"), parseCidr("100.64.0.0/10"), parseCidr("fd00:aa::/64")],
};

Deno.test("nftables text", async (t) => {
  await t.step("the exact table, replacing any left over in the same transaction", () => {
    assert.equal(
      siteRulesetCommands(RULESET_INPUT),
      [
        "add table inet twofold",
        "delete table inet twofold",
        "table inet twofold {",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        '\t\tmeta nfproto ipv4 iifname "eth1" oifname != { "aes0", "wg0" } drop',
        '\t\tmeta nfproto ipv4 iifname "aes0" oifname != { "eth1" } drop',
        '\t\toifname { "aes0", "wg0" } tcp flags syn tcp option maxseg size set rt mtu',
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        '\t\toifname "eth1" ip saddr { 100.127.0.0/16, 100.64.0.0/10 } masquerade',
        '\t\toifname "eth1" ip6 saddr { fd00:aa::/64 } masquerade',
        "\t}",
        "}",
        "",
      ].join("\n"),
    );
  });
  await t.step("no masquerade: no nat chain; no clamp: no clamp rule", () => {
    const text = siteRulesetCommands({ ...RULESET_INPUT, mssClamp: false, masqueradeSources: [] });
    assert.ok(!text.includes("postrouting") && !text.includes("nat"), text);
    assert.ok(!text.includes("maxseg"), text);
    assert.ok(text.includes("hook forward"), text);
  });
  await t.step("deleting names the table only, and never fails on a missing one", () => {
    assert.equal(NFT_TABLE, "inet twofold");
    assert.equal(deleteTableCommands(), "add table inet twofold\ndelete table inet twofold\n");
  });
  await t.step("an interface name outside the rule never reaches the text", () => {
    assert.throws(
      () => siteRulesetCommands({ ...RULESET_INPUT, lan: 'eth1" accept; #' }),
      /not an interface name/,
    );
  });
  await t.step("libnftables' error text becomes one line of its Error: parts", () => {
    const text = "/dev/stdin:3:1-9: Error: Could not process rule: No such file or directory\n" +
      "add rule inet twofold nochain drop\n^^^^^^^^^\n";
    assert.equal(errorLines(text), "Could not process rule: No such file or directory");
  });
});

Deno.test("saved forwarding values", async (t) => {
  await t.step("round trip", () => {
    const restore = [{ key: "net/ipv4/conf/eth1/forwarding", value: "0" }];
    assert.deepEqual(parseSavedForwarding(formatSavedForwarding(restore)), restore);
  });
  await t.step("refuses anything but per-interface forwarding switches", () => {
    for (
      const key of [
        "net/ipv4/ip_forward",
        "net/ipv4/conf/all/../../../kernel/x/forwarding",
        "kernel/modprobe",
      ]
    ) {
      assert.throws(
        () => parseSavedForwarding(JSON.stringify({ version: 1, restore: [{ key, value: "0" }] })),
        /not a forwarding switch/,
        key,
      );
    }
    assert.throws(() => parseSavedForwarding("{"), /not JSON/);
  });
});

/** A fake kernel: switches in a map, nft batches recorded, failures injected by key or call. */
class FakeKernel implements SiteRouterIo {
  readonly values: Map<string, string | null>;
  readonly nft: string[] = [];
  readonly log: string[] = [];
  failWrite: string | null = null;
  failNft = false;
  constructor(values: Map<string, string | null>) {
    this.values = new Map(values);
  }
  sysctl = {
    read: (key: string) => Promise.resolve(this.values.get(key) ?? null),
    write: (key: string, value: string) => {
      if (key === this.failWrite) return Promise.reject(new Error("Permission denied"));
      this.values.set(key, value);
      this.log.push(`sysctl ${key}=${value}`);
      return Promise.resolve();
    },
  };
  table = false;
  runNft = (commands: string) => {
    if (commands.startsWith("list ")) {
      if (!this.table) throw new Error("No such file or directory");
      return;
    }
    if (this.failNft && commands.includes("chain forward")) throw new Error("Could not process rule");
    this.nft.push(commands);
    this.table = commands.includes("chain forward");
    this.log.push(this.table ? "nft create" : "nft delete");
  };
}

const OPTIONS: SiteRouterOptions = {
  lan: "eth1",
  tunnels: ["aes0"],
  mssClamp: true,
  masqueradeSources: [],
  stateDir: null,
};

Deno.test("site router part over a fake kernel", async (t) => {
  await t.step("start: table first, then switches; close: switches back, then table gone", async () => {
    const kernel = new FakeKernel(switches("0"));
    const router = await startSiteRouter(OPTIONS, kernel);
    assert.equal(kernel.log[0], "nft create");
    assert.equal(kernel.log.length, 5);
    assert.equal(kernel.values.get("net/ipv4/conf/eth1/forwarding"), "1");
    kernel.log.length = 0;
    await router.close();
    await router.close();
    assert.deepEqual(kernel.values, switches("0"));
    assert.equal(kernel.log.at(-1), "nft delete");
    assert.equal(kernel.log.filter((l) => l === "nft delete").length, 1, "closes once");
  });
  await t.step("a table removed behind our back is put back, once", async () => {
    const kernel = new FakeKernel(switches("0"));
    const router = await startSiteRouter(OPTIONS, kernel);
    assert.equal(router.ensureTable(), false, "still there");
    kernel.table = false; // nft flush ruleset
    assert.equal(router.ensureTable(), true);
    assert.equal(kernel.table, true);
    assert.equal(kernel.nft.at(-1), router.ruleset);
    assert.equal(router.ensureTable(), false);
    await router.close();
    assert.equal(kernel.table, false);
    assert.equal(router.ensureTable(), false, "not after close");
    assert.equal(kernel.table, false);
  });
  await t.step("a LAN interface that does not exist: one line, nothing touched", async () => {
    const kernel = new FakeKernel(switches("0"));
    await assert.rejects(
      () => startSiteRouter({ ...OPTIONS, lan: "eth9" }, kernel),
      (e) =>
        e instanceof CliError && e.exitCode === 2 &&
        e.message ===
          'site.lan: there is no interface "eth9" on this host; name the LAN interface (ip link) in site.lan',
    );
    assert.deepEqual(kernel.log, []);
  });
  await t.step("nftables refuses: one line, nothing left switched on", async () => {
    const kernel = new FakeKernel(switches("0"));
    kernel.failNft = true;
    await assert.rejects(
      () => startSiteRouter(OPTIONS, kernel),
      (e) =>
        e instanceof CliError &&
        /^site: nftables refused table inet twofold \(Could not process rule\)/.test(e.message),
    );
    assert.deepEqual(kernel.values, switches("0"));
  });
  await t.step(
    "a switch write fails half-way: those written are put back and the table removed",
    async () => {
      const kernel = new FakeKernel(switches("0"));
      kernel.failWrite = "net/ipv6/conf/eth1/force_forwarding";
      await assert.rejects(
        () => startSiteRouter(OPTIONS, kernel),
        (e) =>
          e instanceof CliError &&
          e.message.startsWith(
            "site: cannot write 1 to /proc/sys/net/ipv6/conf/eth1/force_forwarding (Permission denied)",
          ),
      );
      assert.deepEqual(kernel.values, switches("0"));
      assert.equal(kernel.log.at(-1), "nft delete");
    },
  );
  await t.step("values saved by a crashed run are the ones restored; the file goes at close", async () => {
    const stateDir = await Deno.makeTempDir({ prefix: "tfsr-unit-" });
    try {
      const crashed = new FakeKernel(switches("0"));
      await startSiteRouter({ ...OPTIONS, stateDir }, crashed); // never closed: the crash
      const saved = parseSavedForwarding(await Deno.readTextFile(`${stateDir}/site-forwarding.json`));
      assert.equal(saved.length, 4);
      const kernel = new FakeKernel(crashed.values); // the switches stay on after the crash
      const router = await startSiteRouter({ ...OPTIONS, stateDir }, kernel);
      assert.equal(router.plan.confinements.length, 4, "confined as the originals say");
      await router.close();
      assert.deepEqual(kernel.values, switches("0"));
      await assert.rejects(() => Deno.stat(`${stateDir}/site-forwarding.json`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(stateDir, { recursive: true });
    }
  });
  await t.step("close reports what it could not put back in one line", async () => {
    const kernel = new FakeKernel(switches("0"));
    const router = await startSiteRouter(OPTIONS, kernel);
    kernel.failWrite = "net/ipv4/conf/aes0/forwarding";
    await assert.rejects(
      () => router.close(),
      (e) =>
        e instanceof CliError && e.exitCode === 1 && !e.message.includes("\n") &&
        e.message.includes("/proc/sys/net/ipv4/conf/aes0/forwarding: Permission denied"),
    );
    assert.equal(kernel.values.get("net/ipv4/conf/eth1/forwarding"), "0", "the others are restored");
  });
});

Deno.test("site router options from the node config", async (t) => {
  const key = () => encodeBase64(publicKey(generatePrivateKey()));
  const parse = (peers: unknown[], site: unknown) =>
    parseNodeConfig(
      JSON.stringify({
        node: { name: "router-a", privateKeyFile: "./k", stateDir: "/var/lib/tf-a" },
        wg0: { address: "100.64.0.1/10" },
        aes0: { address: "100.127.0.1/16" },
        peers,
        site,
      }),
      { baseDir: "/etc/twofold", checkFiles: false },
    );
  const aesPeer = { name: "router-b", publicKey: key(), wgIp: "100.64.0.2", aesIp: "100.127.0.2" };
  const exempt = { name: "printer", publicKey: key(), wgIp: "100.64.0.10" };
  await t.step("AES peers only: aes0 is the one tunnel; masquerade the AES subnet", () => {
    const cfg = parse([aesPeer], { lan: "eth1", masquerade: true });
    assert.equal(exemptPeersRoute(cfg.peers), false);
    const o = siteRouterOptions(cfg)!;
    assert.deepEqual(o.tunnels, ["aes0"]);
    assert.deepEqual(o.masqueradeSources.map(formatCidr), ["100.127.0.0/16"]);
    assert.equal(o.stateDir, "/var/lib/tf-a");
    assert.equal(o.mssClamp, true);
  });
  await t.step("an AES-exempt peer: wg0 forwards too, its network is masqueraded", () => {
    const o = siteRouterOptions(parse([aesPeer, exempt], { lan: "eth1", masquerade: true }))!;
    assert.deepEqual(o.tunnels, ["aes0", "wg0"]);
    assert.deepEqual(o.masqueradeSources.map(formatCidr), ["100.127.0.0/16", "100.64.0.0/10"]);
  });
  await t.step("no masquerade, no section", () => {
    assert.deepEqual(siteRouterOptions(parse([aesPeer], { lan: "eth1" }))!.masqueradeSources, []);
    assert.equal(siteRouterOptions(parse([aesPeer], undefined)), null);
  });
  await t.step("the log line says what forwards", () => {
    const plan = planForwarding(TOPOLOGY, switches("0"));
    assert.equal(
      describeSiteRouter(OPTIONS, plan),
      "site: forwarding eth1 <-> aes0 (IPv6 per-interface; switched on and confined: eth1/ipv4 aes0/ipv4 " +
        "eth1/ipv6 aes0/ipv6), MSS clamp on, masquerade off, nftables table inet twofold",
    );
  });
});

Deno.test("site router node part: follows peers that make wg0 a routed tunnel", async () => {
  const all = { lan: "eth1", tunnels: ["aes0", "wg0"] };
  const off = new Map<string, string | null>(forwardingKeys(all).map((k) => [k, "0"]));
  const kernel = new FakeKernel(off);
  const lines: string[] = [];
  const log = {
    debug: () => {},
    info: (m: string) => lines.push(m),
    warn: (m: string) => lines.push(m),
    error: (m: string) => lines.push(`error ${m}`),
  };
  const key = () => encodeBase64(publicKey(generatePrivateKey()));
  const aesPeer = { name: "router-b", publicKey: key(), wgIp: "100.64.0.2", aesIp: "100.127.0.2" };
  const cfg = parseNodeConfig(
    JSON.stringify({
      node: { name: "router-a", privateKeyFile: "./k" },
      wg0: { address: "100.64.0.1/10" },
      aes0: { address: "100.127.0.1/16" },
      peers: [aesPeer],
      site: { lan: "eth1" },
    }),
    { baseDir: "/etc/twofold", checkFiles: false },
  );
  const exempt = parseNodeConfig(
    JSON.stringify({
      node: { name: "router-a", privateKeyFile: "./k" },
      wg0: { address: "100.64.0.1/10" },
      aes0: { address: "100.127.0.1/16" },
      peers: [aesPeer, { name: "printer", publicKey: key(), wgIp: "100.64.0.10" }],
    }),
    { baseDir: "/etc/twofold", checkFiles: false },
  ).peers;
  const stateDir = await Deno.makeTempDir({ prefix: "tfsr-unit-" });
  const part = await siteRouterPart({ ...cfg, node: { ...cfg.node, stateDir } }, log, kernel).start();
  assert.ok(part);
  assert.deepEqual(part.tunnels, ["aes0"]);
  assert.equal(kernel.values.get("net/ipv4/conf/wg0/forwarding"), "0");
  await part.setPeers(exempt);
  assert.deepEqual(part.tunnels, ["aes0", "wg0"]);
  assert.equal(kernel.values.get("net/ipv4/conf/wg0/forwarding"), "1");
  assert.match(kernel.nft.at(-1) ?? "", /oifname \{ "aes0", "wg0" \} tcp flags syn/);
  const nftCalls = kernel.nft.length;
  await part.setPeers(exempt);
  assert.equal(kernel.nft.length, nftCalls, "the same tunnels: nothing redone");
  await part.setPeers(cfg.peers);
  assert.equal(kernel.values.get("net/ipv4/conf/wg0/forwarding"), "0");
  await part.close();
  assert.deepEqual(kernel.values, off);
  assert.ok(
    lines.some((l) => l.startsWith("site: routed tunnels change from aes0 to aes0, wg0")),
    lines.join("\n"),
  );
  assert.ok(!lines.some((l) => l.startsWith("error")), lines.join("\n"));
  assert.deepEqual([...Deno.readDirSync(stateDir)], [], "the saved values are gone after close");
  await Deno.remove(stateDir);
});

Deno.test("site router preflight: a missing LAN interface or libnftables, before anything is up", async () => {
  const kernel = new FakeKernel(switches("0"));
  assert.equal(await siteRouterProblem("eth1", kernel.sysctl, () => true), null);
  assert.deepEqual(await siteRouterProblem("eth9", kernel.sysctl, () => true), {
    field: "site.lan",
    message: 'there is no interface "eth9" on this host; name the LAN interface (ip link) in site.lan',
  });
  assert.equal((await siteRouterProblem("eth1", kernel.sysctl, () => false))?.field, "site");
});
