/**
 * `twofold up` refuses bad files and a node that cannot start before it brings anything up: exit 2,
 * exactly one stderr line, promptly, and (in a namespace) no wg0/aes0 created.
 *
 * Bad files (no root needed): a config that is /dev/zero, a FIFO or a 200 MB file, a private key that
 * is a symbolic link, and `pubkey` fed from /dev/zero. Preflight (root, /dev/net/tun, iproute2;
 * namespace prefix `tfpf-`): an admin token file open to others, the wg0 UDP port and the aes0 UDP
 * port held by another socket.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, Topology, waitUntil } from "../helpers/netns.ts";
import { type LabNode, labNodeAt, writeNodeConfig } from "../helpers/twofold_node.ts";
import { publicKeyFingerprint, SECRET_KEY_LEN } from "../../src/rosenpass/key-files.ts";
import { SKEM_PK_LEN } from "../../src/rosenpass/constants.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** Ample for a refusal that takes well under a second; a hang or a read of /dev/zero ends here. */
const DEADLINE_MS = 30_000;

const A: LabNode = labNodeAt("node-a", 1);
const B: LabNode = labNodeAt("node-b", 2);

/** `twofold up|hub --config <config>` on the host, killed after {@link DEADLINE_MS}. */
async function upOnHost(
  config: string,
  command: "up" | "hub" = "up",
): Promise<{ code: number; stderr: string[]; ms: number }> {
  const started = Date.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, command, "--config", config],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(DEADLINE_MS),
  }).output();
  assert.equal(
    out.signal,
    null,
    `twofold ${command} --config ${config} did not finish within ${DEADLINE_MS} ms`,
  );
  const stderr = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l !== "");
  return { code: out.code, stderr, ms: Date.now() - started };
}

/** Asserts exit 2 and exactly one stderr line matching `re`; prints the line and the time taken. */
function oneLine(r: { code: number; stderr: string[]; ms: number }, re: RegExp): void {
  console.log(`  exit ${r.code} in ${r.ms} ms: ${r.stderr.join(" | ")}`);
  assert.equal(r.code, 2, `exit code 2: ${r.stderr.join("\n")}`);
  assert.equal(r.stderr.length, 1, `exactly one stderr line:\n${r.stderr.join("\n")}`);
  assert.match(r.stderr[0], re);
}

integrationTest("twofold up refuses bad config and key files with one line, exit 2", [
  requireBinary("mkfifo"),
], async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfpf-files-" });
  try {
    await t.step("a config that is /dev/zero", async () => {
      oneLine(await upOnHost("/dev/zero"), /^twofold: config \/dev\/zero: the file is a character device/);
    });
    await t.step("a config that is a FIFO nobody writes (up and hub)", async () => {
      const fifo = `${dir}/node.fifo`;
      assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
      oneLine(await upOnHost(fifo), /node\.fifo: the file is a FIFO, not a regular file/);
      oneLine(await upOnHost(fifo, "hub"), /node\.fifo: the file is a FIFO.*pass the path of a hub config/);
    });
    await t.step("a 200 MB config", async () => {
      const big = `${dir}/big.json`;
      await Deno.writeFile(big, new Uint8Array(0));
      await Deno.truncate(big, 200_000_000); // sparse
      oneLine(await upOnHost(big), /big\.json: the file is 200000000 bytes, over the 1048576-byte limit/);
    });
    await t.step("a private key file that is a symbolic link", async () => {
      const config = await writeNodeConfig(dir, A, [B]);
      const real = `${dir}/${A.name}.key`;
      const link = `${dir}/linked.key`;
      await Deno.symlink(real, link);
      const raw = JSON.parse(await Deno.readTextFile(config));
      raw.node.privateKeyFile = link;
      await Deno.writeTextFile(config, JSON.stringify(raw));
      oneLine(
        await upOnHost(config),
        new RegExp(`node\\.privateKeyFile: ${link} is a symbolic link \\(to ${real}\\)`),
      );
    });
    await t.step("pubkey with /dev/zero on stdin stops at the key-size cap", async () => {
      const started = Date.now();
      const zero = await Deno.open("/dev/zero");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--quiet", MAIN, "pubkey"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(DEADLINE_MS),
      }).spawn();
      // The pipe breaks when pubkey exits; that is expected.
      const feeding = zero.readable.pipeTo(child.stdin).catch(() => {});
      const out = await child.output();
      await feeding;
      assert.equal(out.signal, null, "pubkey finished");
      const stderr = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l !== "");
      oneLine(
        { code: out.code, stderr, ms: Date.now() - started },
        /pubkey: stdin holds more than 4096 bytes/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Interface names in `ns` (from `ip -o link`). */
async function links(ns: Netns): Promise<string[]> {
  const out = (await ns.exec(["ip", "-o", "link", "show"])).stdout;
  return out.split("\n").filter((l) => l !== "").map((l) => l.split(":")[1].trim().split("@")[0]);
}

/**
 * Runs `fn` while `ip monitor link` watches `ns`; asserts that no wg0 or aes0 appeared meanwhile (not
 * even briefly: a node that comes up and is torn down again would show here) nor is there afterwards.
 */
async function assertNoInterfaceDuring(ns: Netns, fn: () => Promise<void>): Promise<void> {
  const monitor = ns.spawn(["ip", "-o", "monitor", "link"]);
  try {
    await new Promise((r) => setTimeout(r, 300)); // let the monitor subscribe
    await fn();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await monitor.kill();
  }
  assert.ok(!/\b(wg0|aes0)\b/.test(monitor.output()), `no wg0/aes0 came up:\n${monitor.output()}`);
  const names = await links(ns);
  assert.ok(!names.includes("wg0") && !names.includes("aes0"), `no wg0/aes0: ${names.join(", ")}`);
}

/** Runs `twofold up` in `ns` and waits for it to exit (bounded); returns code, stderr lines, time. */
async function upInNamespace(
  ns: Netns,
  config: string,
): Promise<{ code: number; stderr: string[]; ms: number }> {
  const started = Date.now();
  const proc = ns.spawn([Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, "up", "--config", config]);
  if (!(await proc.waitFor(DEADLINE_MS))) {
    await proc.kill();
    throw new Error(`twofold up did not exit within ${DEADLINE_MS} ms:\n${proc.output()}`);
  }
  const code = await proc.wait();
  // stdout stays empty on a refusal, so the combined output is stderr.
  return { code, stderr: proc.output().split("\n").filter((l) => l !== ""), ms: Date.now() - started };
}

/** Holds UDP `port` on every IPv4 address in `ns` until killed; resolves once bound. */
async function holdUdpPort(ns: Netns, port: number) {
  const code = `import dgram from "node:dgram";
const s = dgram.createSocket("udp4");
s.bind(${port}, "0.0.0.0", () => console.log("bound"));`;
  const proc = ns.spawn([Deno.execPath(), "eval", "--quiet", code]);
  const bound = await waitUntil(() => proc.output().includes("bound") || proc.exited, 20_000);
  assert.ok(bound && !proc.exited, `could not hold UDP ${port}: ${proc.output()}`);
  return proc;
}

integrationTest(
  "twofold up preflight: a bad token file or a busy UDP port is one line, exit 2, nothing brought up",
  [requireRoot(), requireTun(), requireBinary("ip")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfpf-" });
    try {
      const ns = await topo.netns("tfpf-a", { replaceExisting: true });
      const config = await writeNodeConfig(dir, A, [B]);
      const tokenFile = `${dir}/admin.token`;
      const raw = JSON.parse(await Deno.readTextFile(config));
      raw.admin.tokenFile = tokenFile;
      await Deno.writeTextFile(config, JSON.stringify(raw));

      await t.step("an admin token file open to others", async () => {
        await Deno.writeTextFile(tokenFile, "some-token\n", { mode: 0o644 });
        await Deno.chmod(tokenFile, 0o644);
        await assertNoInterfaceDuring(ns, async () => {
          oneLine(
            await upInNamespace(ns, config),
            /^twofold: admin\.tokenFile: admin token file .* has permissions 0644, wider than 0600/,
          );
        });
        await Deno.chmod(tokenFile, 0o600);
      });

      await t.step("the wg0 UDP port held by another process", async () => {
        const holder = await holdUdpPort(ns, 51820);
        try {
          await assertNoInterfaceDuring(ns, async () => {
            oneLine(await upInNamespace(ns, config), /^twofold: wg0\.listenPort: UDP port 51820 is in use/);
          });
        } finally {
          await holder.kill();
        }
      });

      await t.step("the aes0 UDP port held by another process", async () => {
        const holder = await holdUdpPort(ns, 51830);
        try {
          await assertNoInterfaceDuring(ns, async () => {
            oneLine(
              await upInNamespace(ns, config),
              /^twofold: aes0\.listenPort: UDP port 100\.64\.0\.1:51830 is in use/,
            );
          });
        } finally {
          await holder.kill();
        }
      });

      await t.step("Rosenpass: a swapped peer key, then a busy Rosenpass UDP port", async () => {
        // Random bytes of the right sizes: start-up checks sizes and fingerprints before any McEliece work.
        const random = (n: number) => {
          const out = new Uint8Array(n);
          for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
          return out;
        };
        await Deno.writeFile(`${dir}/rp.sk`, random(SECRET_KEY_LEN.v02), { mode: 0o600 });
        await Deno.chmod(`${dir}/rp.sk`, 0o600);
        await Deno.writeFile(`${dir}/rp.pk`, random(SKEM_PK_LEN));
        const peerKey = random(SKEM_PK_LEN);
        await Deno.writeFile(`${dir}/b-rp.pk`, peerKey);
        const rp = JSON.parse(await Deno.readTextFile(config));
        rp.rosenpass = { secretKeyFile: `${dir}/rp.sk`, publicKeyFile: `${dir}/rp.pk` };
        rp.peers[0].rosenpass = {
          publicKeyFile: `${dir}/b-rp.pk`,
          fingerprint: publicKeyFingerprint(random(SKEM_PK_LEN)),
        };
        await Deno.writeTextFile(config, JSON.stringify(rp));
        await assertNoInterfaceDuring(ns, async () => {
          oneLine(
            await upInNamespace(ns, config),
            /^twofold: config .*: peers\[0\]\.rosenpass\.fingerprint: .* does not match the pinned fingerprint/,
          );
        });
        rp.peers[0].rosenpass.fingerprint = publicKeyFingerprint(peerKey);
        await Deno.writeTextFile(config, JSON.stringify(rp));
        const holder = await holdUdpPort(ns, 51821);
        try {
          await assertNoInterfaceDuring(ns, async () => {
            oneLine(
              await upInNamespace(ns, config),
              /^twofold: rosenpass\.listenPort: UDP port 51821 is in use/,
            );
          });
        } finally {
          await holder.kill();
        }
      });
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
