/**
 * The node's audit part: `<stateDir>/audit.jsonl` records every audited bus event
 * (audit/node-events.ts) with the peer's key source; closing records why the node stopped.
 * @module
 */
import type { NodeConfig } from "../config/node-config.ts";
import type { EventBus } from "../events/bus.ts";
import { AuditLog } from "../audit/audit-log.ts";
import { auditInputOf } from "../audit/node-events.ts";

/** The running audit part. */
export interface AuditPart {
  /** Stops recording, records `reason` and closes the file. */
  close(reason: string): void;
}

/** Opens the audit log of the node of `cfg` and subscribes it to `events`; throws a one-line error. */
export function openNodeAudit(cfg: NodeConfig, events: EventBus): AuditPart {
  let audit: AuditLog;
  try {
    audit = AuditLog.open(cfg.node.stateDir);
  } catch (e) {
    throw new Error(`audit log in node.stateDir ${cfg.node.stateDir}: ${(e as Error).message}`);
  }
  audit.append({ event: "audit-opened", fields: { node: cfg.node.name, reason: "node starting" } });
  const keySources = new Map<string, string>(cfg.peers.map((p) => [p.name, p.keySource]));
  const unsubscribe = events.subscribe((e) => {
    const input = auditInputOf(e, e.peer !== undefined ? keySources.get(e.peer) : undefined);
    if (input) audit.append(input, e.at);
  });
  return {
    close(reason: string) {
      unsubscribe();
      audit.append({ event: "audit-closed", fields: { node: cfg.node.name, reason } });
      audit.close();
    },
  };
}
