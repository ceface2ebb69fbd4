import assert from "node:assert/strict";
import { parseIperf3UdpJson } from "../../src/lab/measure.ts";
import { CLOCK_TICKS_PER_SECOND, cpuSeconds, parseProcStat } from "../../src/lab/proc-cpu.ts";

/**
 * `iperf3 -u -b 500M -t 2 -J` as printed through Debian wireguard-go's double tunnel in a short
 * `deno task bench` run on a loaded machine (tabs turned into spaces, nothing else changed): the
 * sender kept the offered rate, the receiver got 43 % of the datagrams.
 */
const IPERF3_UDP_SAMPLE = `
{
  "start":  {
    "connected":  [{
        "socket":  5,
        "local_host":  "100.127.0.1",
        "local_port":  34141,
        "remote_host":  "100.127.0.2",
        "remote_port":  5201
      }],
    "version":  "iperf 3.12",
    "system_info":  "Linux vm 6.18.44-fc-v1272 #1 SMP PREEMPT_DYNAMIC @0 x86_64",
    "timestamp":  {
      "time":  "Sun, 06 Dec 2026 09:56:16 GMT",
      "timesecs":  1796550976
    },
    "connecting_to":  {
      "host":  "100.127.0.2",
      "port":  5201
    },
    "cookie":  "xkmfxb7kbtdalzeeznfqrli7cy5uyd7cjq5r",
    "target_bitrate":  500000000,
    "sock_bufsize":  0,
    "sndbuf_actual":  212992,
    "rcvbuf_actual":  212992,
    "test_start":  {
      "protocol":  "UDP",
      "num_streams":  1,
      "blksize":  1308,
      "omit":  0,
      "duration":  2,
      "bytes":  0,
      "blocks":  0,
      "reverse":  0,
      "tos":  0,
      "target_bitrate":  500000000
    }
  },
  "intervals":  [{
      "streams":  [{
          "socket":  5,
          "start":  0,
          "end":  1.000657,
          "seconds":  1.0006569623947144,
          "bytes":  62335356,
          "bits_per_second":  498355447.2119807,
          "packets":  47657,
          "omitted":  false,
          "sender":  true
        }],
      "sum":  {
        "start":  0,
        "end":  1.000657,
        "seconds":  1.0006569623947144,
        "bytes":  62335356,
        "bits_per_second":  498355447.2119807,
        "packets":  47657,
        "omitted":  false,
        "sender":  true
      }
    }, {
      "streams":  [{
          "socket":  5,
          "start":  1.000657,
          "end":  2.00387,
          "seconds":  1.0032130479812622,
          "bytes":  62598264,
          "bits_per_second":  499182215.58991683,
          "packets":  47858,
          "omitted":  false,
          "sender":  true
        }],
      "sum":  {
        "start":  1.000657,
        "end":  2.00387,
        "seconds":  1.0032130479812622,
        "bytes":  62598264,
        "bits_per_second":  499182215.58991683,
        "packets":  47858,
        "omitted":  false,
        "sender":  true
      }
    }],
  "end":  {
    "streams":  [{
        "udp":  {
          "socket":  5,
          "start":  0,
          "end":  2.00387,
          "seconds":  2.00387,
          "bytes":  124933620,
          "bits_per_second":  498769361.28591174,
          "jitter_ms":  0.016687113520272249,
          "lost_packets":  54086,
          "packets":  95515,
          "lost_percent":  56.625660890959537,
          "out_of_order":  0,
          "sender":  true
        }
      }],
    "sum":  {
      "start":  0,
      "end":  2.018376,
      "seconds":  2.018376,
      "bytes":  124933620,
      "bits_per_second":  498769361.28591174,
      "jitter_ms":  0.016687113520272249,
      "lost_packets":  54086,
      "packets":  95515,
      "lost_percent":  56.625660890959537,
      "sender":  true
    },
    "sum_sent":  {
      "start":  0,
      "end":  2.00387,
      "seconds":  2.00387,
      "bytes":  124933620,
      "bits_per_second":  498769361.28591174,
      "jitter_ms":  0,
      "lost_packets":  0,
      "packets":  95515,
      "lost_percent":  0,
      "sender":  true
    },
    "sum_received":  {
      "start":  0,
      "end":  2.018376,
      "seconds":  2.018376,
      "bytes":  54189132,
      "bits_per_second":  214783100.86921367,
      "jitter_ms":  0.016687113520272249,
      "lost_packets":  54086,
      "packets":  95515,
      "lost_percent":  56.625660890959537,
      "sender":  false
    },
    "cpu_utilization_percent":  {
      "host_total":  22.950386687523888,
      "host_user":  1.2809351264963305,
      "host_system":  21.669451561027557,
      "remote_total":  7.0615508172143917,
      "remote_user":  0.11078185932190206,
      "remote_system":  6.95076895789249
    }
  }
}
`;

/**
 * A real /proc/PID/stat line of a busy process whose command name is `w) x (y` (a symlink of that
 * name to python3): utime 54, stime 5 ticks, matching its own os.times() (0.54 s user, 0.05 s system).
 */
const PROC_STAT_SAMPLE =
  "18696 (w) x (y) R 18692 18692 17601 0 -1 4194304 839 0 3 0 54 5 0 0 20 0 1 0 339055 " +
  "14286848 2013 18446744073709551615 4321280 7148169 140729961846048 0 0 0 0 16781312 2 0 0 0 17 0 0 0 0 0 0 " +
  "9723336 11027064 229363712 140729961851472 140729961851635 140729961851635 140729961852907 0\n";

Deno.test("parseIperf3UdpJson reads received rate and loss from the receiver's sum", () => {
  const r = parseIperf3UdpJson(IPERF3_UDP_SAMPLE);
  assert.equal(r.sentMbps, 498.76936128591174);
  assert.equal(r.receivedMbps, 214.78310086921367);
  assert.equal(r.lossPercent, 56.62566089095954);
  assert.equal(r.packets, 95515);
  assert.equal(r.lostPackets, 54086);
  assert.equal(r.jitterMs, 0.01668711352027225);
});

Deno.test("parseIperf3UdpJson throws with iperf3's message, or when no UDP result is there", () => {
  assert.throws(
    () => parseIperf3UdpJson(JSON.stringify({ error: "unable to connect to server" })),
    /unable to connect/,
  );
  assert.throws(() => parseIperf3UdpJson(JSON.stringify({ end: {} })), /no UDP result/);
  assert.throws(() => parseIperf3UdpJson("iperf3: error"), /did not print JSON/);
});

Deno.test("parseProcStat counts fields after the last parenthesis, so a command name with ') (' is no trap", () => {
  assert.deepEqual(parseProcStat(PROC_STAT_SAMPLE), { userTicks: 54, systemTicks: 5 });
  assert.equal(cpuSeconds({ userTicks: 54, systemTicks: 5 }), 59 / CLOCK_TICKS_PER_SECOND);
  assert.equal(CLOCK_TICKS_PER_SECOND, 100);
});

Deno.test("parseProcStat rejects text that is not a stat line", () => {
  assert.throws(() => parseProcStat("no parenthesis here"), /not a \/proc\/PID\/stat line/);
  assert.throws(() => parseProcStat("1 (init) S 0 1"), /no utime\/stime/);
});
