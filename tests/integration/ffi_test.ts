/**
 * Tests of the FFI layer (ffi/libc.ts, tun.ts, netlink.ts, udp.ts, ip-text.ts).
 *
 * The first tests need no privileges (sockaddr/IP text, libc basics, batch layout, loopback bind
 * errors). The namespace tests need root, /dev/net/tun, `ip` and `ping`: they create namespace
 * `tfffi-a`, run tests/integration/ffi_ns_agent.ts inside it (a test process cannot enter a
 * namespace itself), check its JSON reports, and verify the kernel state with `ip -j`.
 */

import assert from "node:assert/strict";
import { denoBin } from "../helpers/deno.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import {
  bigLen,
  check,
  EAGAIN,
  EFD_NONBLOCK,
  errno,
  libc,
  pointerAt,
  POLLIN,
  SysError,
} from "../../ffi/libc.ts";
import { pollOne } from "../../ffi/poll.ts";
import { formatIp, hostBitsZero, parseCidr, parseIp } from "../../ffi/ip-text.ts";
import {
  decodeSockaddr,
  encodeSockaddr,
  MsgBatch,
  openUdp,
  recvFrom,
  sendTo,
  sockaddrEquals,
  sockaddrLength,
} from "../../ffi/udp.ts";
import { openTun } from "../../ffi/tun.ts";

const NS = "tfffi-a";
const AGENT = new URL("./ffi_ns_agent.ts", import.meta.url).pathname;

Deno.test("sockaddr and IP text encoding", async (t) => {
  await t.step("IPv4 sockaddr_in round trip with network byte order port", () => {
    const out = new Uint8Array(40).fill(0xaa);
    const len = encodeSockaddr("192.0.2.10", 51820, out, 4);
    assert.equal(len, 16);
    assert.deepEqual([...out.subarray(4, 20)], [2, 0, 0xca, 0x6c, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(out[3], 0xaa, "bytes before the offset untouched");
    assert.equal(out[20], 0xaa, "bytes after the sockaddr untouched");
    assert.deepEqual(decodeSockaddr(out, 4), { ip: "192.0.2.10", port: 51820 });
    assert.equal(sockaddrLength(out, 4), 16);
  });

  await t.step("IPv6 sockaddr_in6 round trip with compression", () => {
    const out = new Uint8Array(28);
    assert.equal(encodeSockaddr("2001:db8::1:0:0:2", 443, out, 0), 28);
    assert.deepEqual([...out.subarray(0, 4)], [10, 0, 1, 0xbb]);
    assert.deepEqual([...out.subarray(8, 24)], [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2]);
    assert.deepEqual(decodeSockaddr(out, 0), { ip: "2001:db8::1:0:0:2", port: 443 });
  });

  await t.step("IPv4 on a dual-stack socket is written IPv4-mapped and decoded back to dotted form", () => {
    const out = new Uint8Array(28);
    assert.equal(encodeSockaddr("127.0.0.1", 9, out, 0, true), 28);
    assert.deepEqual([...out.subarray(8, 24)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    assert.deepEqual(decodeSockaddr(out, 0), { ip: "127.0.0.1", port: 9 });
  });

  await t.step("IPv6 zone index is carried in sin6_scope_id", () => {
    const out = new Uint8Array(28);
    encodeSockaddr("fe80::1%7", 1, out, 0);
    assert.equal(new DataView(out.buffer).getUint32(24, true), 7);
    assert.deepEqual(decodeSockaddr(out, 0), { ip: "fe80::1%7", port: 1 });
  });

  await t.step("sockaddrEquals compares family, port, address", () => {
    const a = new Uint8Array(28);
    const b = new Uint8Array(56);
    encodeSockaddr("::1", 5, a, 0);
    encodeSockaddr("::1", 5, b, 28);
    assert.equal(sockaddrEquals(a, 0, b, 28), true);
    encodeSockaddr("::1", 6, b, 28);
    assert.equal(sockaddrEquals(a, 0, b, 28), false);
    encodeSockaddr("1.2.3.4", 5, a, 0);
    encodeSockaddr("1.2.3.4", 5, b, 0, true);
    assert.equal(sockaddrEquals(a, 0, b, 0), false, "sockaddr_in vs mapped in6 differ on the wire");
  });

  await t.step("malformed input is rejected", () => {
    const out = new Uint8Array(28);
    for (const bad of ["1.2.3", "1.2.3.256", "01.2.3.4", "1:2:3:4:5:6:7:8:9", "1::2::3", "g::1", ""]) {
      assert.throws(() => encodeSockaddr(bad, 1, out, 0), /invalid IP/, bad);
    }
    assert.throws(() => encodeSockaddr("1.2.3.4", 70000, out, 0), /invalid port/);
    out.fill(0);
    assert.throws(() => decodeSockaddr(out, 0), /unsupported sockaddr family/);
  });

  await t.step("IP text formatting follows RFC 5952", () => {
    assert.equal(formatIp(parseIp("2001:0db8:0:0:0:0:0:1")), "2001:db8::1");
    assert.equal(formatIp(parseIp("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1");
    assert.equal(formatIp(parseIp("1:0:0:2:0:0:0:3")), "1:0:0:2::3");
    assert.equal(formatIp(parseIp("::")), "::");
    assert.equal(formatIp(parseIp("::ffff:1.2.3.4")), "::ffff:1.2.3.4"); // RFC 5952 §5 mixed notation
  });

  await t.step("CIDR parsing and host-bit check", () => {
    const c = parseCidr("100.64.0.1/10");
    assert.equal(c.family, 4);
    assert.equal(c.prefixLength, 10);
    assert.equal(hostBitsZero(c.address, 10), false);
    assert.equal(hostBitsZero(parseCidr("100.64.0.0/10").address, 10), true);
    assert.equal(parseCidr("fd00::1").prefixLength, 128);
    assert.throws(() => parseCidr("10.0.0.0/33"), /prefix length/);
  });
});

Deno.test("libc bindings", async (t) => {
  await t.step("read/write work on Uint8Array views over a SharedArrayBuffer", () => {
    const fd = check(libc.eventfd(0, EFD_NONBLOCK), "eventfd");
    try {
      const sab = new SharedArrayBuffer(64);
      const src = new Uint8Array(sab, 8, 8);
      const dst = new Uint8Array(sab, 32, 8);
      src.set([3, 0, 0, 0, 0, 0, 0, 0]);
      assert.equal(libc.write(fd, src, 8n), 8);
      assert.equal(pollOne(fd, POLLIN, 0) & POLLIN, POLLIN);
      assert.equal(libc.read(fd, dst, 8n), 8);
      assert.equal(dst[0], 3);
      // Pointer variant into the middle of the shared buffer.
      assert.equal(libc.writePtr(fd, pointerAt(src, 0), 8n), 8);
      const whole = new Uint8Array(sab);
      assert.equal(libc.readPtr(fd, pointerAt(whole, 48), 8n), 8);
      assert.equal(whole[48], 3);
    } finally {
      libc.close(fd);
    }
  });

  await t.step("errno and SysError report the failed call", () => {
    const fd = check(libc.eventfd(0, EFD_NONBLOCK), "eventfd");
    try {
      assert.equal(libc.read(fd, new Uint8Array(8), 8n), -1);
      assert.equal(errno(), EAGAIN);
      const e = new SysError(EAGAIN, "read");
      assert.equal(e.errno, EAGAIN);
      assert.equal(e.code, "EAGAIN");
      assert.equal(e.syscall, "read");
      assert.match(e.message, /^read: Resource temporarily unavailable \(EAGAIN\)$/);
    } finally {
      libc.close(fd);
    }
    assert.throws(
      () => check(libc.close(-1), "close"),
      (e: unknown) => e instanceof SysError && e.code === "EBADF",
    );
    assert.equal(check(0, "noop"), 0);
  });

  await t.step("bigint caches return identical values (no allocation once warm)", () => {
    assert.equal(bigLen(1400), 1400n);
    assert.ok(Object.is(bigLen(1400), bigLen(1400)));
    assert.equal(bigLen(1 << 20), BigInt(1 << 20));
    const u8 = new Uint8Array(new ArrayBuffer(64), 16, 32);
    assert.equal(pointerAt(u8, 4) - pointerAt(u8, 0), 4n);
    assert.equal(pointerAt(u8, 0) - pointerAt(new Uint8Array(u8.buffer), 0), 16n);
  });
});

Deno.test("MsgBatch construction and bounds", async (t) => {
  await t.step("views have the requested sizes and live in one (shared) buffer", () => {
    const need = MsgBatch.byteLength(32, 1500);
    assert.ok(need >= 32 * (1500 + 28 + 64 + 16));
    const sab = new SharedArrayBuffer(need + 8);
    const b = new MsgBatch(32, 1500, sab, 8);
    assert.equal(b.bufs.length, 32);
    assert.ok(b.bufs.every((x) => x.length === 1500 && x.buffer === sab));
    assert.ok(b.addrs.every((x) => x.length === 28));
    assert.equal(b.lens.length, 32);
    assert.throws(() => new MsgBatch(32, 1500, sab, 16), /needs/);
    assert.throws(() => new MsgBatch(0, 1500), /count/);
  });

  await t.step("setAddr copies from bytes or another batch", () => {
    const a = new MsgBatch(2, 64);
    const b = new MsgBatch(2, 64);
    a.setAddrIp(1, "::1", 7);
    b.setAddr(0, a, 1);
    assert.equal(b.addrLens[0], 28);
    assert.deepEqual(decodeSockaddr(b.addrs[0], 0), { ip: "::1", port: 7 });
    const raw = new Uint8Array(20);
    encodeSockaddr("10.1.2.3", 99, raw, 4);
    b.setAddr(1, raw, 4);
    assert.equal(b.addrLens[1], 16);
    assert.deepEqual(decodeSockaddr(b.addrs[1], 0), { ip: "10.1.2.3", port: 99 });
    assert.throws(() => b.send(0, 3), RangeError);
  });
});

Deno.test("UDP on host loopback (no root)", async (t) => {
  await t.step("EADDRINUSE names the port", () => {
    const first = openUdp(0, { family: 4, bindAddress: "127.0.0.1" });
    try {
      assert.ok(first.port > 0);
      assert.throws(
        () => openUdp(first.port, { family: 4, bindAddress: "127.0.0.1" }),
        (e: unknown) =>
          e instanceof SysError && e.code === "EADDRINUSE" &&
          e.message.startsWith(`UDP port ${first.port} is in use`),
      );
    } finally {
      libc.close(first.fd);
    }
  });

  await t.step("sendTo/recvFrom at buffer offsets", () => {
    const a = openUdp(0, { family: 4, bindAddress: "127.0.0.1", nonBlocking: true });
    const b = openUdp(0, { family: 4, bindAddress: "127.0.0.1", nonBlocking: true });
    try {
      const addr = new Uint8Array(28);
      const alen = encodeSockaddr("127.0.0.1", b.port, addr, 0);
      const tx = new Uint8Array(64);
      tx.set([1, 2, 3, 4, 5], 10);
      assert.equal(sendTo(a.fd, tx, 10, 5, addr, alen), 5);
      assert.ok(pollOne(b.fd, POLLIN, 2000) > 0);
      const rx = new Uint8Array(64);
      const from = new Uint8Array(28);
      assert.equal(recvFrom(b.fd, rx, 20, 40, from), 5);
      assert.deepEqual([...rx.subarray(20, 25)], [1, 2, 3, 4, 5]);
      assert.deepEqual(decodeSockaddr(from, 0), { ip: "127.0.0.1", port: a.port });
      assert.equal(recvFrom(b.fd, rx, 0, 64, from), -1);
      assert.equal(errno(), EAGAIN);
    } finally {
      libc.close(a.fd);
      libc.close(b.fd);
    }
  });

  await t.step("openTun rejects bad names before touching the kernel", () => {
    assert.throws(() => openTun("a-name-longer-than-15"), /must be 1\.\.15 bytes/);
    assert.throws(() => openTun(""), /must be 1\.\.15 bytes/);
  });
});

// ---- namespace tests ----

/** Runs `ip ARGS`; returns stdout, throws with stderr on failure. */
async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

async function removeNamespace(name: string): Promise<void> {
  await new Deno.Command("ip", { args: ["netns", "del", name], stdout: "null", stderr: "null" }).output();
}

/** An agent process inside the namespace, read as JSON lines. */
class Agent {
  readonly child: Deno.ChildProcess;
  #buffer = "";
  #reader: ReadableStreamDefaultReader<string>;
  #stderr: Promise<string>;
  #exited = false;

  constructor(ns: string, args: string[]) {
    this.child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, denoBin(), "run", "-A", AGENT, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reader = this.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stderr = new Response(this.child.stderr).text();
    this.child.status.then(() => this.#exited = true);
  }

  /** Next report; throws if the agent reports an error, exits, or `timeoutMs` passes. */
  async next(expected: string, timeoutMs = 15000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          continue; // not a report (stray output)
        }
        if (msg.event === "error") throw new Error(`agent error: ${msg.message}`);
        if (msg.event !== expected) throw new Error(`expected "${expected}" from agent, got ${line}`);
        return msg;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for "${expected}" from agent`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), left));
      const chunk = await Promise.race([this.#reader.read(), timeout]);
      clearTimeout(timer);
      if (chunk === null) continue;
      if (chunk.done) {
        throw new Error(`agent exited before "${expected}": ${await this.#stderr}`);
      }
      this.#buffer += chunk.value;
    }
  }

  /** Kills the agent (by its PID) if still running and waits for it. */
  async stop(): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    const status = await this.child.status;
    await this.#reader.cancel().catch(() => {});
    await this.#stderr.catch(() => "");
    return status;
  }
}

const nsChecks = [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping")];

integrationTest("ffi: TUN + rtnetlink inside a namespace", nsChecks, async (t) => {
  const tun = "tfffitun0";
  await removeNamespace(NS);
  let agent: Agent | undefined;
  try {
    await ip("netns", "add", NS);
    agent = new Agent(NS, ["tun", tun]);
    const a = agent;

    await t.step(
      "openTun + netlink configure the link, addresses and routes (checked with ip -j)",
      async () => {
        const cfg = await a.next("configured");
        assert.equal(cfg.name, tun);
        assert.equal(cfg.mtu, 1380);
        assert.equal(cfg.up, true);
        assert.equal(cfg.missingIndex, null);
        assert.match(String(cfg.duplicateAddress), /EEXIST/);
        const addrs = cfg.addresses as string[];
        assert.ok(addrs.includes("100.64.0.1/10") && addrs.includes("fd64::1/64"), String(addrs));
        assert.ok(!addrs.includes("fd66::1/64"), "delAddress removed fd66::1");
        const routes = cfg.routes as string[];
        assert.ok(routes.includes("100.100.0.0/16") && routes.includes("fd65::/64"), String(routes));
        assert.ok(!routes.includes("100.101.0.0/16"), "delRoute removed 100.101.0.0/16");

        const [link] = JSON.parse(await ip("-n", NS, "-j", "link", "show", "dev", tun));
        assert.equal(link.mtu, 1380);
        assert.ok(link.flags.includes("UP"));
        assert.equal(link.ifindex, cfg.index);
        const [addrInfo] = JSON.parse(await ip("-n", NS, "-j", "addr", "show", "dev", tun));
        const seen = addrInfo.addr_info.map((x: { local: string; prefixlen: number }) =>
          `${x.local}/${x.prefixlen}`
        );
        assert.ok(seen.includes("100.64.0.1/10") && seen.includes("fd64::1/64"), String(seen));
        assert.ok(
          !seen.some((a: string) => a.startsWith("fe80:")),
          `no automatic IPv6 link-local address after disableIpv6AutoAddresses: ${seen}`,
        );
        const [detail] = JSON.parse(await ip("-n", NS, "-j", "-d", "link", "show", "dev", tun));
        assert.equal(detail.inet6_addr_gen_mode, "none");
        const r4 = JSON.parse(await ip("-n", NS, "-j", "-4", "route", "show", "dev", tun));
        assert.ok(r4.some((r: { dst: string }) => r.dst === "100.100.0.0/16"), JSON.stringify(r4));
        assert.ok(!r4.some((r: { dst: string }) => r.dst === "100.101.0.0/16"));
        const r6 = JSON.parse(await ip("-n", NS, "-j", "-6", "route", "show", "dev", tun));
        assert.ok(r6.some((r: { dst: string }) => r.dst === "fd65::/64"), JSON.stringify(r6));
      },
    );

    await t.step("a kernel-routed ping is read from the TUN and answered by a TUN write", async () => {
      const ping = new Deno.Command("ip", {
        args: ["netns", "exec", NS, "ping", "-c", "1", "-W", "5", "100.100.0.7"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const req = await a.next("echo-request");
      assert.equal(req.src, "100.64.0.1");
      assert.equal(req.dst, "100.100.0.7");
      assert.equal(req.len, 84);
      const out = await ping;
      assert.equal(out.success, true, `ping failed: ${new TextDecoder().decode(out.stdout)}`);
      assert.match(new TextDecoder().decode(out.stdout), /1 received/);
    });

    await t.step("crafted UDP packets written to the TUN reach local sockets (IPv4 and IPv6)", async () => {
      const v4 = await a.next("udp-via-tun");
      assert.equal(v4.family, 4);
      assert.equal(v4.wrote, 28 + 16);
      assert.equal(v4.payload, "hello-via-tun-v4");
      assert.deepEqual(v4.from, { ip: "100.100.0.7", port: 4444 });
      const v6 = await a.next("udp-via-tun");
      assert.equal(v6.family, 6);
      assert.equal(v6.payload, "hello-via-tun-v6");
      assert.deepEqual(v6.from, { ip: "fd65::7", port: 4444 });
    });

    await t.step("an unread TUN drops once its queue is full; getLink counts them (txDropped)", async () => {
      const q = await a.next("tun-queue-full");
      assert.ok((q.sent as number) >= 1000, `sent ${q.sent}`);
      const dropped = (q.after as number) - (q.before as number);
      assert.ok(dropped > 0, `the kernel dropped some: ${JSON.stringify(q)}`);
      assert.ok(dropped + (q.drained as number) <= (q.sent as number) + 10, JSON.stringify(q));
      const [link] = JSON.parse(await ip("-n", NS, "-j", "-s", "link", "show", "dev", tun));
      assert.ok(link.stats64.tx.dropped >= (q.after as number), JSON.stringify(link.stats64.tx));
    });

    await t.step("multi-queue TUN takes a second queue; deleteLink removes the device", async () => {
      const mq = await a.next("multiqueue");
      assert.equal(mq.fds, 2);
      assert.match(String(mq.singleQueueOnMq), /multi-queue mismatch/);
      assert.equal(mq.emptyRead, -1);
      assert.equal(mq.emptyErrnoIsEagain, true);
      assert.equal(mq.existsAfterDelete, false);
    });

    await t.step("the link watcher fires when the link is deleted with ip link del", async () => {
      await a.next("watching");
      await ip("-n", NS, "link", "del", tun);
      const del = await a.next("deleted", 5000);
      assert.equal(del.exists, false);
      await a.next("done");
      const status = await a.child.status;
      assert.equal(status.code, 0);
    });
  } finally {
    await agent?.stop();
    await removeNamespace(NS);
  }
});

integrationTest("ffi: recvmmsg/sendmmsg batches on loopback inside a namespace", nsChecks, async (t) => {
  await removeNamespace(NS);
  let agent: Agent | undefined;
  try {
    await ip("netns", "add", NS);
    agent = new Agent(NS, ["udp"]);
    const a = agent;
    for (const label of ["ipv4", "ipv6", "dual-v4-client", "dual-both"]) {
      await t.step(`${label}: ≥32 datagrams keep their lengths, payloads and source address`, async () => {
        const r = await a.next("batch");
        assert.equal(r.label, label);
        assert.ok((r.count as number) >= 32);
        assert.equal((r.sentLens as number[]).length, r.count);
        assert.deepEqual(r.gotLens, r.sentLens);
        assert.deepEqual(r.echoLens, r.sentLens, "echo back to the received source addresses");
        assert.equal(r.payloadsOk, true);
        assert.deepEqual(r.sources, [r.expectedSource]);
      });
    }
    await t.step("timing of 32 × 1400 B batches", async () => {
      const r = await a.next("timing", 60000);
      assert.equal(r.received, (r.rounds as number) * 32);
      for (const k of ["sendmmsgUsPer32x1400", "recvmmsgUsPer32x1400", "emptyRecvmmsgUs"]) {
        assert.ok(Number.isFinite(r[k]) && (r[k] as number) > 0, k);
      }
      console.log(
        `[ffi timing] sendmmsg 32x1400B: ${(r.sendmmsgUsPer32x1400 as number).toFixed(1)} µs/call; ` +
          `recvmmsg (drain): ${(r.recvmmsgUsPer32x1400 as number).toFixed(1)} µs/batch; ` +
          `empty recvmmsg: ${(r.emptyRecvmmsgUs as number).toFixed(2)} µs; ` +
          `sendto+recvfrom 1400B: ${(r.sendtoPlusRecvfromUsPer1400 as number).toFixed(1)} µs`,
      );
      await a.next("done");
      assert.equal((await a.child.status).code, 0);
    });
  } finally {
    await agent?.stop();
    await removeNamespace(NS);
  }
});
