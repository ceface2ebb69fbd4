/**
 * `GET /v1/debug/bundle`: the support bundle (src/support/bundle.ts) as `application/gzip`. It holds
 * the node's config and network map (redacted), so it needs the admin token on every listener, the
 * unix socket included, unlike the other reads. One bundle is made at a time; a second request
 * meanwhile is answered 503 `busy`. The status and metrics in it are this API's own answers.
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Logger } from "../../log.ts";
import { recentLogLines } from "../../log.ts";
import type { AdminBackend } from "../model.ts";
import { ApiError, errorResponse } from "../errors.ts";
import { TokenChecker } from "../auth.ts";
import { bearer, routeApp } from "../route-kit.ts";
import {
  buildSupportBundle,
  BUNDLE_CONTENT_TYPE,
  type BundleInput,
  type Gathered,
} from "../../support/bundle.ts";
import { formatWgDump } from "../../support/wg-dump.ts";

/** Where the route is mounted and its path there (`/v1/debug` + `/bundle`). */
export const BUNDLE_MOUNT = "/v1/debug";

/** Options of {@link bundleApp}. */
export interface BundleAppOptions {
  /** The admin token: required here on every listener; also searched for in the bundle. */
  token: string;
  /** The whole admin app, asked for `/v1/status` and `/metrics` so the bundle holds exactly its answers. */
  api: { request(path: string, init?: RequestInit): Response | Promise<Response> };
  /** Where the route logs (bundle made, its size; never a secret). */
  log: Logger;
  /** Clock, for tests. */
  now?: () => Date;
}

const bundleRoute = createRoute({
  method: "get",
  path: "/bundle",
  summary: "A support bundle (.tar.gz): redacted config and network map, status, events, metrics, logs, " +
    "versions, ip addr/route/rule, wg show all dump with keys redacted, the newest audit records.",
  description: "Needs the admin token on every listener (the unix socket too): it describes the node's " +
    "configuration. Secrets are never included: see docs/support-bundle.md.",
  security: bearer,
  responses: {
    200: {
      description: "The bundle; Content-Disposition names it.",
      content: { [BUNDLE_CONTENT_TYPE]: { schema: z.string().openapi({ format: "binary" }) } },
    },
    401: errorResponse("No bearer token (needed on every listener for this route)."),
    403: errorResponse("A bearer token that is not the admin token."),
    503: errorResponse("A bundle is being made already (`busy`); retry when it is done."),
  },
});

async function apiText(opts: BundleAppOptions, path: string): Promise<Gathered<string>> {
  try {
    const r = await opts.api.request(path, { headers: { authorization: `Bearer ${opts.token}` } });
    const text = await r.text();
    return r.ok ? { ok: text.endsWith("\n") ? text : `${text}\n` } : { error: `HTTP ${r.status}` };
  } catch (e) {
    return { error: (e as Error).message.split("\n")[0] };
  }
}

/** Gathers every part of the bundle from `backend`, the API and the host. */
async function gather(backend: AdminBackend, opts: BundleAppOptions): Promise<BundleInput> {
  // Loaded on the first bundle: the gatherers reach the config and netmap modules, which import the
  // admin server (an import cycle at start-up), and nothing else needs them.
  const { gatherAuditHead, gatherConfig, gatherIp, gatherNetmap, gatherVersions } = await import(
    "../../support/gather.ts"
  );
  const node = backend.supportSources?.() ?? null;
  const noNode = { missing: "the admin backend is not a running node" } as const;
  let wgDump: Gathered<string> = noNode;
  const secrets: (Uint8Array | string)[] = [opts.token];
  if (node) {
    try {
      const devices = node.devices();
      for (const d of devices) {
        if (d.snapshot.privateKey) secrets.push(d.snapshot.privateKey);
        for (const p of d.snapshot.peers) secrets.push(p.presharedKey);
      }
      wgDump = { ok: formatWgDump(devices) };
    } catch (e) {
      wgDump = { error: (e as Error).message.split("\n")[0] };
    }
    secrets.push(...node.secrets());
  }
  return {
    nodeName: node?.nodeName ?? backend.status().node.name,
    now: opts.now?.() ?? new Date(),
    config: node ? gatherConfig(node.configPath) : noNode,
    netmap: node ? gatherNetmap(node.stateDir) : noNode,
    status: await apiText(opts, "/v1/status"),
    metrics: await apiText(opts, "/metrics"),
    events: backend.events.since(0),
    logLines: recentLogLines(),
    versions: gatherVersions(),
    ip: node ? await gatherIp() : { "ip-addr.json": noNode },
    wgDump,
    auditHead: node ? gatherAuditHead(node.stateDir) : noNode,
    secrets,
  };
}

/** The sub-app serving `GET /bundle` (mount it at {@link BUNDLE_MOUNT}). */
export function bundleApp(backend: AdminBackend, opts: BundleAppOptions): OpenAPIHono {
  const tokens = new TokenChecker(opts.token);
  const app = routeApp();
  let busy = false;
  // The token on every listener, before anything else (the parent's check lets socket reads through).
  app.use("*", async (c, next) => {
    tokens.require(c.req.header("Authorization"));
    await next();
  });
  app.openapi(bundleRoute, async () => {
    if (busy) {
      throw new ApiError(503, "busy", "a support bundle is being made already; retry when it is done");
    }
    busy = true;
    try {
      const bundle = await buildSupportBundle(await gather(backend, opts));
      opts.log.info(
        `support bundle ${bundle.name}.tar.gz made (${bundle.bytes.length} bytes, ${bundle.manifest.files.length} files, ` +
          `${bundle.manifest.redactedFields.length} fields redacted)`,
      );
      return new Response(bundle.bytes as Uint8Array<ArrayBuffer>, {
        status: 200,
        headers: {
          "Content-Type": BUNDLE_CONTENT_TYPE,
          "Content-Disposition": `attachment; filename="${bundle.name}.tar.gz"`,
          "Cache-Control": "no-store",
        },
      }) as never;
    } finally {
      busy = false;
    }
  });
  return app;
}
