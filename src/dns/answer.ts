/**
 * The authoritative DNS stub as one pure function: query bytes + the zone → response bytes (or null:
 * drop). Wire encoding and decoding are @leichtgewicht/dns-packet's; this file decides what to answer.
 *
 * - `NAME.DOM` A → wg0 IP, `NAME.aes.DOM` A → AES IP (ANY answers the A record too); SOA and NS at the
 *   apex; authoritative (AA), TTL {@link DNS_TTL_SECONDS}.
 * - An existing name asked for another type: NOERROR with no answer and the SOA in the authority
 *   section (RFC 2308 "no data"). The apex and `aes.DOM` exist (no address).
 * - A name in the zone that does not exist: NXDOMAIN with the SOA in the authority section.
 * - Outside the zone, a class other than IN/ANY, or a zone transfer: REFUSED (no AA).
 * - Case-insensitive; the question and the owner names are echoed as asked (DNS 0x20 preserved).
 * - EDNS: a query's OPT is answered with our OPT (version 0, our payload size, DO copied); EDNS version
 *   above 0 is BADVERS; more than one OPT is FORMERR.
 * - Malformed queries: shorter than a header, or a response (QR set): dropped; an opcode other than
 *   QUERY: NOTIMP; anything that does not decode, or not exactly one question: FORMERR. Never throws.
 * - Over UDP a response is cut to the client's size (512, or its EDNS size up to
 *   {@link EDNS_UDP_PAYLOAD}) by dropping records and setting TC, so the client retries over TCP.
 * @module
 */
import * as dnsPacket from "@leichtgewicht/dns-packet";
import type { DnsZone } from "./zone.ts";

/** TTL of every record (and the negative-caching TTL): short, so map changes show within seconds. */
export const DNS_TTL_SECONDS = 30;
/** The UDP payload size we advertise and honour at most (the DNS flag day 2020 value). */
export const EDNS_UDP_PAYLOAD = 1232;
/** Largest UDP response to a client without EDNS (RFC 1035). */
export const CLASSIC_UDP_LIMIT = 512;
/** Largest DNS message (TCP's 2-byte length prefix). */
export const MAX_DNS_MESSAGE = 65535;
/** SOA timers (seconds): refresh, retry, expire. No secondaries exist; these are conventional values. */
const SOA_TIMERS = { refresh: 3600, retry: 600, expire: 86400 };
/** Mailbox label of the SOA's responsible person. */
const SOA_MAILBOX_LABEL = "hostmaster";

const HEADER_BYTES = 12;
const QR_BIT = 0x8000;
const OPCODE_SHIFT = 11;
const OPCODE_MASK = 0xf;
const OPCODE_QUERY = 0;
const DNSSEC_OK = 0x8000;

/** Response codes used here (RFC 1035, RFC 6891 for BADVERS). */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended (12 bits): upper 8 bits travel in the OPT record. */
  BADVERS: 16,
} as const;

/** Over which transport a query came: it decides the response size limit. */
export type DnsTransport = "udp" | "tcp";

/** An OPT pseudo-record as the library reads and writes it (its typings omit these fields). */
interface OptRecord {
  type: "OPT";
  name: string;
  udpPayloadSize?: number;
  extendedRcode?: number;
  ednsVersion?: number;
  flags?: number;
  options?: unknown[];
}

type Answer = dnsPacket.Answer;
type Question = dnsPacket.Question;

interface Reply {
  id: number;
  opcode: number;
  rd: boolean;
  authoritative: boolean;
  rcode: number;
  question: Question | null;
  answers: Answer[];
  authorities: Answer[];
  /** The query's OPT when it had one: the response then carries ours. */
  queryOpt: OptRecord | null;
}

function headerFlags(r: Reply, truncated: boolean): number {
  return (r.opcode << OPCODE_SHIFT) |
    (r.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) |
    (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) |
    (r.rd ? dnsPacket.RECURSION_DESIRED : 0) |
    (r.rcode & 0xf);
}

function encodeReply(r: Reply, limit: number): Uint8Array {
  const additionals: Answer[] = [];
  if (r.queryOpt) {
    const opt: OptRecord = {
      type: "OPT",
      name: ".",
      udpPayloadSize: EDNS_UDP_PAYLOAD,
      extendedRcode: r.rcode >> 4,
      ednsVersion: 0,
      flags: (r.queryOpt.flags ?? 0) & DNSSEC_OK,
      options: [],
    };
    additionals.push(opt as unknown as Answer);
  }
  const build = (truncated: boolean): Uint8Array =>
    dnsPacket.encode({
      type: "response",
      id: r.id,
      flags: headerFlags(r, truncated),
      questions: r.question ? [r.question] : [],
      answers: truncated ? [] : r.answers,
      authorities: truncated ? [] : r.authorities,
      additionals,
    });
  const full = build(false);
  return full.length <= limit ? full : build(true);
}

function soaRecord(zone: DnsZone, owner: string): Answer {
  return {
    type: "SOA",
    name: owner,
    ttl: DNS_TTL_SECONDS,
    class: "IN",
    data: {
      mname: zone.nameServer,
      rname: `${SOA_MAILBOX_LABEL}.${zone.domain}`,
      serial: zone.serial,
      refresh: SOA_TIMERS.refresh,
      retry: SOA_TIMERS.retry,
      expire: SOA_TIMERS.expire,
      minimum: DNS_TTL_SECONDS,
    },
  };
}

/** The owner name of the apex as the client spelled it (the tail of its question). */
function apexAsAsked(asked: string, zone: DnsZone): string {
  return asked.slice(asked.length - zone.domain.length);
}

function resolveQuestion(reply: Reply, q: Question, zone: DnsZone): void {
  const asked = q.name.endsWith(".") ? q.name.slice(0, -1) : q.name;
  const name = asked.toLowerCase();
  const klass = q.class ?? "IN";
  const inZone = name === zone.domain || name.endsWith(`.${zone.domain}`);
  if (!inZone || (klass !== "IN" && klass !== "ANY") || q.type === "AXFR" || q.type === "IXFR") {
    reply.rcode = RCODE.REFUSED;
    return;
  }
  if (q.type === "OPT") {
    reply.rcode = RCODE.FORMERR;
    return;
  }
  reply.authoritative = true;
  const soa = () => soaRecord(zone, apexAsAsked(asked, zone));
  const address = zone.addresses.get(name);
  if (address !== undefined) {
    if (q.type === "A" || q.type === "ANY") {
      reply.answers.push({
        type: "A",
        name: asked,
        ttl: DNS_TTL_SECONDS,
        class: "IN",
        data: `${address[0]}.${address[1]}.${address[2]}.${address[3]}`,
      });
    } else {
      reply.authorities.push(soa());
    }
    return;
  }
  if (zone.emptyNames.has(name)) {
    if (name === zone.domain && (q.type === "SOA" || q.type === "ANY")) reply.answers.push(soa());
    else if (name === zone.domain && q.type === "NS") {
      reply.answers.push({
        type: "NS",
        name: asked,
        ttl: DNS_TTL_SECONDS,
        class: "IN",
        data: zone.nameServer,
      });
    } else reply.authorities.push(soa());
    return;
  }
  reply.rcode = RCODE.NXDOMAIN;
  reply.authorities.push(soa());
}

/** The bytes of the question section as the library writes it, for the round-trip check. */
function questionBytes(q: Question): Uint8Array {
  // question.encode returns its input, not the buffer: hand it one.
  const bytes = new Uint8Array(dnsPacket.question.encodingLength(q));
  dnsPacket.question.encode(q, bytes, 0);
  return bytes;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Answers one DNS query for `zone`. Returns the response bytes, or null when the query must be
 * dropped (too short to hold a header, or itself a response). Never throws.
 */
export function answer(query: Uint8Array, zone: DnsZone, transport: DnsTransport): Uint8Array | null {
  if (query.length < HEADER_BYTES) return null;
  const id = (query[0] << 8) | query[1];
  const flags = (query[2] << 8) | query[3];
  if (flags & QR_BIT) return null;
  const reply: Reply = {
    id,
    opcode: (flags >> OPCODE_SHIFT) & OPCODE_MASK,
    rd: (flags & dnsPacket.RECURSION_DESIRED) !== 0,
    authoritative: false,
    rcode: RCODE.NOERROR,
    question: null,
    answers: [],
    authorities: [],
    queryOpt: null,
  };
  let limit = transport === "tcp" ? MAX_DNS_MESSAGE : CLASSIC_UDP_LIMIT;
  try {
    if (reply.opcode !== OPCODE_QUERY) {
      reply.rcode = RCODE.NOTIMP;
      return encodeReply(reply, limit);
    }
    let packet: dnsPacket.Packet;
    try {
      packet = dnsPacket.decode(query);
    } catch {
      reply.rcode = RCODE.FORMERR;
      return encodeReply(reply, limit);
    }
    const questions = packet.questions ?? [];
    const opts = (packet.additionals ?? []).filter((a) => a.type === "OPT") as unknown as OptRecord[];
    if (opts.length === 1) {
      reply.queryOpt = opts[0];
      if (transport === "udp") {
        limit = Math.min(Math.max(opts[0].udpPayloadSize ?? 0, CLASSIC_UDP_LIMIT), EDNS_UDP_PAYLOAD);
      }
    }
    if (questions.length !== 1 || opts.length > 1) {
      reply.rcode = RCODE.FORMERR;
      return encodeReply(reply, limit);
    }
    const q = questions[0];
    if (String(q.class).startsWith("UNKNOWN_")) {
      // A class the library cannot write back: refuse without echoing the question.
      reply.rcode = RCODE.REFUSED;
      return encodeReply(reply, limit);
    }
    // A question the library cannot write back byte for byte (a compression pointer, a label holding
    // a dot or bytes that are not UTF-8) is not one we can echo faithfully: FORMERR.
    const written = questionBytes(q);
    if (!sameBytes(written, query.subarray(HEADER_BYTES, HEADER_BYTES + written.length))) {
      reply.rcode = RCODE.FORMERR;
      return encodeReply(reply, limit);
    }
    reply.question = q;
    if (reply.queryOpt && (reply.queryOpt.ednsVersion ?? 0) !== 0) {
      reply.rcode = RCODE.BADVERS;
      return encodeReply(reply, limit);
    }
    resolveQuestion(reply, q, zone);
    return encodeReply(reply, limit);
  } catch {
    // Defensive: an input the library chokes on while writing the answer. Answer SERVFAIL without
    // echoing anything from the query but its id.
    try {
      return encodeReply({
        ...reply,
        rcode: RCODE.SERVFAIL,
        question: null,
        answers: [],
        authorities: [],
        queryOpt: null,
      }, limit);
    } catch {
      return null;
    }
  }
}
