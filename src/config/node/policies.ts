/**
 * The `policies` section as part of the node config: its rules live in config/policy-config.ts; here a
 * policy problem becomes this file's one-line field problem.
 * @module
 */
import { z } from "zod";
import { parsePolicyConfig, type PolicyConfig, PolicyConfigError } from "../policy-config.ts";
import { FieldProblem } from "../zod-errors.ts";
import type { Cidr } from "../../wireguard/allowedips.ts";

/** Schema slot of `policies`: checked by parsePolicyConfig, which names its own fields. */
export const policiesSlot = z.unknown().optional();

/**
 * `policies`: absent → null (all-to-all); names are checked against `knownPeers` (null: a map-driven
 * node, checked when its map is read), networks against `advertised` (node.advertise).
 */
export function resolve(
  raw: unknown,
  knownPeers: string[] | null,
  advertised: Cidr[] | null,
): PolicyConfig | null {
  if (raw === undefined) return null;
  try {
    return parsePolicyConfig(raw, knownPeers, "policies", advertised);
  } catch (e) {
    if (e instanceof PolicyConfigError) {
      throw new FieldProblem(e.field, e.message.slice(e.field.length + 2));
    }
    throw e;
  }
}
