/**
 * The `rosenpass` section and every `peers[i].rosenpass` as part of the node config: the rules live in
 * config/rosenpass-config.ts; here a problem becomes this file's one-line field problem.
 * @module
 */
import { resolveRosenpass, type RosenpassConfig, RosenpassConfigProblem } from "../rosenpass-config.ts";
import { FieldProblem } from "../zod-errors.ts";
import type { ParseNodeConfigOptions } from "../node-config.ts";

export { nodeRosenpassSection as rosenpassSection } from "../rosenpass-config.ts";

/** What the Rosenpass rules need to know of one peer entry. */
export interface RosenpassPeerInput {
  name: string;
  rosenpass?: Parameters<typeof resolveRosenpass>[1][number]["rosenpass"];
  wgPskFile?: string;
}

/** `rosenpass` and every `peers[i].rosenpass`; the interface ports are taken and must not be reused. */
export function resolve(
  raw: Parameters<typeof resolveRosenpass>[0],
  peers: readonly RosenpassPeerInput[],
  ctx: ParseNodeConfigOptions,
  ports: { wg0: number; aes0: number },
): RosenpassConfig {
  try {
    return resolveRosenpass(
      raw,
      peers.map((p, i) => ({
        at: `peers[${i}]`,
        name: p.name,
        rosenpass: p.rosenpass,
        hasWgPskFile: p.wgPskFile !== undefined,
      })),
      {
        baseDir: ctx.baseDir,
        checkFiles: ctx.checkFiles,
        takenPorts: { "wg0.listenPort": ports.wg0, "aes0.listenPort": ports.aes0 },
      },
    );
  } catch (e) {
    if (e instanceof RosenpassConfigProblem) throw new FieldProblem(e.field, e.problem);
    throw e;
  }
}
