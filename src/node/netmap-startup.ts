/**
 * The map a node starts from: its source's current map when the source answers and the map is
 * acceptable (never older than the last good copy), else the last good copy in the state directory
 * (checked again like a download), else nothing — a clear one-line error. Then the node config with
 * the addresses and peers of the node's view filled in.
 * @module
 */
import type { NodeConfig } from "../config/node-config.ts";
import { acceptMap } from "../netmap/accept.ts";
import { LAST_GOOD_FILE, loadLastGood, saveLastGood } from "../netmap/last-good.ts";
import { NetmapError } from "../netmap/schema.ts";
import type { NetmapSource } from "../netmap/source-config.ts";
import { routeSettingsOf, viewFor } from "../netmap/view.ts";
import { configFromView } from "./netmap-config.ts";
import type { RunningMap } from "./netmap-part.ts";
import { describeSource } from "./netmap-part.ts";
import { readSourceOnce } from "./netmap-source.ts";

/** A map could not be had at start-up: one line. */
export class NetmapStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NetmapStartError";
  }
}

/** What {@link loadStartMap} found. */
export interface StartMap {
  /** The node config with addresses and peers from the map. */
  config: NodeConfig;
  /** The map it runs. */
  initial: RunningMap;
  /** The source's ETag for the next poll (URL sources). */
  etag: string | null;
  /** Where the map came from ("file …", "url …", "last good copy …"), for the log. */
  origin: string;
  /** Warnings to log (the source was down, its map was refused). */
  warnings: string[];
}

/** Finds the start map for `cfg` (a config with a `netmap` source) and fills the config from it. */
export async function loadStartMap(
  cfg: NodeConfig & { netmap: NetmapSource },
  now: () => number = Date.now,
): Promise<StartMap> {
  const source = cfg.netmap;
  const stateDir = cfg.node.stateDir;
  const ownKey = cfg.node.publicKey;
  if (!ownKey) throw new NetmapStartError("netmap: the node's private key was not loaded");
  let lastGood;
  try {
    lastGood = loadLastGood(stateDir);
  } catch (e) {
    throw new NetmapStartError(`netmap: ${(e as Error).message}`);
  }
  const warnings: string[] = [];
  const reading = await readSourceOnce(source, null);
  let chosen:
    | { document: Uint8Array; signature: Uint8Array | null; etag: string | null; origin: string }
    | null = null;
  let decision = null;
  if (reading.kind === "map") {
    const d = acceptMap({
      document: reading.map.document,
      signature: reading.map.signature,
      signerPublicKey: source.signerPublicKey,
      last: lastGood?.record ?? null,
    });
    if (d.ok) {
      decision = d;
      chosen = { ...reading.map, etag: reading.etag, origin: describeSource(source) };
    } else warnings.push(`netmap from ${describeSource(source)} refused: ${d.reason}`);
  } else if (reading.kind === "failed") {
    warnings.push(`netmap source unreadable: ${reading.reason}`);
  }
  if (!chosen && lastGood) {
    const d = acceptMap({
      document: lastGood.document,
      signature: lastGood.signature,
      signerPublicKey: source.signerPublicKey,
      last: null,
    });
    if (!d.ok) {
      throw new NetmapStartError(
        `netmap: the last good copy ${stateDir}/${LAST_GOOD_FILE} is refused (${d.reason}); fix the map source`,
      );
    }
    decision = d;
    chosen = {
      document: lastGood.document,
      signature: lastGood.signature,
      etag: null,
      origin: `the last good copy ${stateDir}/${LAST_GOOD_FILE}`,
    };
  }
  if (!chosen || !decision || !decision.ok) {
    throw new NetmapStartError(
      `netmap: no map to start from (${
        warnings.join("; ") || "the source gave none"
      }) and no last good copy in ${stateDir}; fix the map source`,
    );
  }
  let config: NodeConfig;
  let view;
  try {
    view = viewFor(decision.map, ownKey, routeSettingsOf(cfg));
    config = configFromView(cfg, view);
  } catch (e) {
    if (e instanceof NetmapError) throw new NetmapStartError(`netmap (${chosen.origin}): ${e.message}`);
    throw e;
  }
  if (chosen.etag !== null || !decision.unchanged) {
    try {
      saveLastGood(stateDir, {
        document: chosen.document,
        signature: chosen.signature,
        record: decision.record,
      });
    } catch (e) {
      warnings.push(`netmap: the last good copy was not saved: ${(e as Error).message}`);
    }
  }
  return {
    config,
    initial: {
      document: chosen.document,
      signature: chosen.signature,
      map: decision.map,
      view,
      record: decision.record,
      appliedAt: now(),
    },
    etag: chosen.etag,
    origin: chosen.origin,
    warnings,
  };
}
