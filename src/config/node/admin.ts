/**
 * The `admin` section: where the local admin API listens (loopback or a unix socket only), its token
 * file and its connection limits.
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import {
  type AdminListen,
  AdminListenError,
  DEFAULT_ADMIN_MAX_CONNECTIONS,
  DEFAULT_ADMIN_MAX_EVENT_STREAMS,
  DEFAULT_ADMIN_SOCKET,
  parseAdminListen,
} from "../admin-listen.ts";
import { FieldProblem } from "../zod-errors.ts";
import { pathField } from "./fields.ts";
import type { NodeConfig, ParseNodeConfigOptions } from "../node-config.ts";

/** Default admin API address: the unix socket. */
export const DEFAULT_ADMIN_LISTEN = `unix:${DEFAULT_ADMIN_SOCKET}`;
/** Name of the admin token file inside the state directory (the default `admin.tokenFile`). */
export const ADMIN_TOKEN_FILE = "admin.token";

/** Schema of the `admin` section. */
export const adminSection = z.strictObject({
  enabled: z.boolean().default(true),
  listen: z.string().min(1, { error: `must not be empty; the default is "${DEFAULT_ADMIN_LISTEN}"` })
    .default(DEFAULT_ADMIN_LISTEN),
  tokenFile: pathField.optional(),
  maxConnections: z.int().min(1, { error: "must be at least 1" }).max(4096, { error: "must be at most 4096" })
    .default(DEFAULT_ADMIN_MAX_CONNECTIONS),
  maxEventStreams: z.int().min(1, { error: "must be at least 1" }).max(1024, {
    error: "must be at most 1024",
  })
    .default(DEFAULT_ADMIN_MAX_EVENT_STREAMS),
});

/** `admin`: the listen address (loopback or a unix socket only) and the token file. */
export function resolve(
  raw: z.output<typeof adminSection>,
  ctx: ParseNodeConfigOptions,
  stateDir: string,
): NodeConfig["admin"] {
  const text = raw.listen.trim();
  // A unix socket path may be relative to the config file, like every other path.
  const unixPath = text.startsWith("unix:")
    ? text.slice(5)
    : text.startsWith("/") || text.startsWith(".")
    ? text
    : null;
  let listen: AdminListen;
  try {
    listen = parseAdminListen(unixPath ? `unix:${resolvePath(ctx.baseDir, unixPath)}` : text);
  } catch (e) {
    if (!(e instanceof AdminListenError)) throw e;
    throw new FieldProblem("admin.listen", e.message);
  }
  const tokenFile = raw.tokenFile !== undefined
    ? resolvePath(ctx.baseDir, raw.tokenFile)
    : `${stateDir}/${ADMIN_TOKEN_FILE}`;
  const { maxConnections, maxEventStreams } = raw;
  if (maxEventStreams > maxConnections) {
    throw new FieldProblem(
      "admin.maxEventStreams",
      `${maxEventStreams} is more than admin.maxConnections (${maxConnections}); each stream holds a connection`,
    );
  }
  return { enabled: raw.enabled, listen, tokenFile, maxConnections, maxEventStreams };
}
