/**
 * Field rules several node-config sections share: names, paths, ports and IP address parsing, each
 * failing with a {@link FieldProblem}.
 * @module
 */
import { z } from "zod";
import { type Cidr, formatIp, parseCidr, parseIp } from "../../wireguard/allowedips.ts";
import { DNS_LABEL, FieldProblem, quote } from "../zod-errors.ts";

/** The rule for node and peer names, as the schema states it. */
const NAME_RULE = "must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen";

/** A node or peer name (one DNS label). */
export const nameField = z.string().regex(DNS_LABEL, { error: NAME_RULE });
/** A non-empty file path. */
export const pathField = z.string().min(1, { error: "must not be empty; give a file path" });
/** A UDP port with a default. */
export const portField = (fallback: number) =>
  z.int()
    .min(1, { error: "must be a UDP port from 1 to 65535" })
    .max(65535, { error: "must be a UDP port from 1 to 65535" })
    .default(fallback);

/** Byte-wise equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `ip` lies inside `prefix`. */
export function inside(ip: Uint8Array, prefix: Cidr): boolean {
  if (ip.length !== prefix.addr.length) return false;
  return sameBytes(parseCidr(`${formatIp(ip)}/${prefix.bits}`).addr, prefix.addr);
}

/** Splits `addr[/len]`; the address parsed with parseIp, or a FieldProblem. */
export function splitAddress(
  field: string,
  text: string,
  what: string,
): { ip: Uint8Array; bits: number | null } {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  let ip: Uint8Array;
  try {
    ip = parseIp(addrText);
  } catch {
    throw new FieldProblem(field, `${quote(text)} is not an IP address; write ${what}`);
  }
  if (slash < 0) return { ip, bits: null };
  const bitsText = text.slice(slash + 1);
  const max = ip.length * 8;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > max) {
    throw new FieldProblem(field, `${quote(text)} has an invalid prefix length; use 0 to ${max}`);
  }
  return { ip, bits: Number(bitsText) };
}

/** A peer's single address (`ip` or `ip/32`, `ip/128`) as a host prefix. */
export function parseHostAddress(field: string, text: string): Cidr {
  const { ip, bits } = splitAddress(field, text, "one address such as 100.64.0.2");
  const full = ip.length * 8;
  if (bits !== null && bits !== full) {
    throw new FieldProblem(
      field,
      `${quote(text)} must be a single address; write it without a prefix (/${full})`,
    );
  }
  return { family: ip.length === 4 ? 4 : 6, addr: ip, bits: full };
}
