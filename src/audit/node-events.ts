/**
 * Which node events go into the audit log and what a record of one holds: the key-plane and security
 * events (gate opened/closed/stale with the reason, key installed with epoch and source, refusals,
 * mismatches, failed key confirmations, inconsistent shares, PSRD low/exhausted, hubs unreachable or
 * misbehaving, lockdown and config changes): every event type but the per-handshake ones, which stay
 * out (they are many and say nothing about keys or policy). A record copies only the event's public
 * fields — names, public keys, epochs, hub ids, reasons and scalar data — and never key material (events carry none; see events/bus.ts).
 * @module
 */
import { NODE_EVENT_TYPES, type NodeEvent, type NodeEventType } from "../events/bus.ts";
import type { AuditFields, AuditInput } from "./chain.ts";

/** Node events the audit log leaves out: one per handshake, many, and about no key or policy. */
export const UNAUDITED_EVENTS: readonly NodeEventType[] = ["handshake-completed", "handshake-failed"];

/** The node event types the audit log records: every other one, so a new event type is audited. */
export const AUDITED_EVENTS: ReadonlySet<NodeEventType> = new Set(
  NODE_EVENT_TYPES.filter((t) => !UNAUDITED_EVENTS.includes(t)),
);

/**
 * The audit record for `e`, or null when its type is not audited. `keySource` is the concerned peer's
 * configured key source (manual, dske, …), recorded with every peer event so a key's origin is named.
 */
export function auditInputOf(e: NodeEvent, keySource?: string): AuditInput | null {
  if (!AUDITED_EVENTS.has(e.type)) return null;
  const fields: AuditFields = { eventId: e.id };
  if (e.layer !== undefined) fields.layer = e.layer;
  if (e.peer !== undefined) fields.peer = e.peer;
  if (e.publicKey !== undefined) fields.publicKey = e.publicKey;
  if (keySource !== undefined) fields.keySource = keySource;
  if (e.epoch !== undefined) fields.epoch = e.epoch;
  if (e.hub !== undefined) fields.hub = e.hub;
  fields.reason = e.reason;
  for (const [k, v] of Object.entries(e.data ?? {})) fields[`data.${k}`] = v;
  return { event: e.type, fields };
}
