/**
 * The `lockdown` section: extra wg0 ports to allow, under the admin API's rules for the same list.
 * @module
 */
import { z } from "zod";
import {
  LockdownListError,
  type LockdownPort,
  normalizeLockdownPorts,
  parseProtoPort,
} from "../lockdown-ports.ts";
import { DSKE_PORT as DSKE_TCP_PORT } from "../ports.ts";
import { FieldProblem } from "../zod-errors.ts";
import type { NodeConfig } from "../node-config.ts";

/** Schema of the `lockdown` section. */
export const lockdownSection = z.strictObject({
  extraPorts: z.array(z.string()).default([]),
});

/**
 * `lockdown.extraPorts`: `PROTO/PORT` or `PROTO/FIRST-LAST` entries, under the admin API's rules (no
 * overlaps, at most 256, not just a port the lockdown always allows).
 */
export function resolve(raw: z.output<typeof lockdownSection>, aesPort: number): NodeConfig["lockdown"] {
  const ports = raw.extraPorts.map((text, i) => {
    try {
      return parseProtoPort(text);
    } catch (e) {
      throw new FieldProblem(`lockdown.extraPorts[${i}]`, (e as Error).message);
    }
  });
  let extraPorts: LockdownPort[];
  try {
    extraPorts = normalizeLockdownPorts(ports, {
      label: (i) => `extraPorts[${i}]`,
      alwaysAllowed: { aesUdpPort: aesPort, dskeTcpPort: DSKE_TCP_PORT },
    });
  } catch (e) {
    if (!(e instanceof LockdownListError)) throw e;
    throw new FieldProblem(
      e.index === null ? "lockdown.extraPorts" : `lockdown.extraPorts[${e.index}]`,
      e.problem,
    );
  }
  return { extraPorts };
}
