/**
 * The `netmap`, `dns` and `pskFiles` sections: where a map-driven node's network map comes from, the
 * port of the map's DNS stub, and the manual PSK files of the map's AES peers. With a `netmap`, the
 * node's own addresses, the AES subnet and the peers come from the map: the config must not give them,
 * and stand-in addresses let the other sections resolve until node/netmap-config.ts fills in the node's
 * entry. Without one, the addresses are required and `pskFiles` does not apply.
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import { type NetmapSource, netmapSourceSection, resolveNetmapSource } from "../../netmap/source-config.ts";
import { NetmapError } from "../../netmap/schema.ts";
import { DNS_PORT } from "../ports.ts";
import { readPskFile } from "../psk-file.ts";
import { FieldProblem } from "../zod-errors.ts";
import { nameField, pathField } from "./fields.ts";
import type { AddressedInterfaces, RawInterfaces } from "./interfaces.ts";
import type { NodeConfig, ParseNodeConfigOptions } from "../node-config.ts";

/** Schema of the `netmap` section (the map source). */
export const netmapSection = netmapSourceSection;

/** Schema of the `dns` section: the map's DNS stub on the wg0 address (only with a `netmap`). */
export const dnsSection = z.strictObject({
  port: z.int()
    .min(1, { error: "must be a port from 1 to 65535" })
    .max(65535, { error: "must be a port from 1 to 65535" })
    .default(DNS_PORT),
});

/** Schema of the `pskFiles` section: manual PSK files by map peer name. */
export const pskFilesSection = z.record(nameField, pathField);

/**
 * Stand-ins for the addresses a map-driven node takes from its map entry: they let the rest of the
 * config resolve (ports, MTU, keys, admin) by the inline rules; node/netmap-config.ts replaces them.
 */
const MAP_PLACEHOLDER = { wg0Address: "100.64.0.1/10", aes0Address: "100.127.0.1/16" } as const;

/** The sections as written (defaults applied), with what they are checked against. */
export interface RawNetmapSections extends RawInterfaces {
  netmap?: z.output<typeof netmapSection>;
  dns: z.output<typeof dnsSection>;
  pskFiles: z.output<typeof pskFilesSection>;
  /** The inline peers (none allowed with a map). */
  peers: readonly unknown[];
}

/** The resolved sections, and the interface sections with addresses the interface rules can check. */
export interface ResolvedNetmapSections {
  netmap: NodeConfig["netmap"];
  dns: NodeConfig["dns"];
  pskFiles: NodeConfig["pskFiles"];
  /** `wg0`/`aes0` as written, or with the stand-in addresses of a map-driven node. */
  interfaces: AddressedInterfaces;
}

/**
 * Resolves the sections. With a `netmap`: no own addresses, subnet or peers; the source resolved; every
 * PSK file checked (with `checkFiles`). Without: both addresses given and no `pskFiles`.
 */
export function resolve(raw: RawNetmapSections, ctx: ParseNodeConfigOptions): ResolvedNetmapSections {
  if (raw.netmap === undefined) return resolveInline(raw);
  const fromMap: [string, unknown][] = [
    ["wg0.address", raw.wg0.address],
    ["aes0.address", raw.aes0.address],
    ["aes0.subnet", raw.aes0.subnet],
  ];
  for (const [field, value] of fromMap) {
    if (value !== undefined) {
      throw new FieldProblem(
        field,
        "comes from the network map (this node's entry) when netmap is set; remove it",
      );
    }
  }
  if (raw.peers.length > 0) {
    throw new FieldProblem(
      "peers",
      "come from the network map when netmap is set; remove them (or remove netmap)",
    );
  }
  let source: NetmapSource;
  try {
    source = resolveNetmapSource(raw.netmap, ctx.baseDir);
  } catch (e) {
    if (e instanceof NetmapError) throw new FieldProblem(e.field, e.problem);
    throw e;
  }
  return {
    netmap: source,
    dns: raw.dns,
    pskFiles: resolvePskFiles(raw.pskFiles, ctx),
    interfaces: {
      wg0: { ...raw.wg0, address: MAP_PLACEHOLDER.wg0Address },
      aes0: { ...raw.aes0, address: MAP_PLACEHOLDER.aes0Address },
    },
  };
}

/** A config without a `netmap`: its own addresses are required, `pskFiles` does not apply. */
function resolveInline(raw: RawNetmapSections): ResolvedNetmapSections {
  const wg0Address = raw.wg0.address;
  if (wg0Address === undefined) {
    throw new FieldProblem(
      "wg0.address",
      'missing; give this node\'s wg0 address (e.g. "100.64.0.1/10") or a "netmap" section it comes from',
    );
  }
  const aes0Address = raw.aes0.address;
  if (aes0Address === undefined) {
    throw new FieldProblem(
      "aes0.address",
      'missing; give this node\'s aes0 address (e.g. "100.127.0.1/16") or a "netmap" section it comes from',
    );
  }
  if (Object.keys(raw.pskFiles).length > 0) {
    throw new FieldProblem("pskFiles", 'applies to peers from a "netmap" only; give inline peers a pskFile');
  }
  return {
    netmap: null,
    dns: raw.dns,
    pskFiles: {},
    interfaces: {
      wg0: { ...raw.wg0, address: wg0Address },
      aes0: { ...raw.aes0, address: aes0Address },
    },
  };
}

/** `pskFiles`: absolute paths by lower-case peer name, each file checked with `checkFiles`. */
function resolvePskFiles(
  raw: z.output<typeof pskFilesSection>,
  ctx: ParseNodeConfigOptions,
): Record<string, string> {
  const pskFiles: Record<string, string> = {};
  for (const [name, file] of Object.entries(raw)) {
    const path = resolvePath(ctx.baseDir, file);
    if (ctx.checkFiles) {
      try {
        readPskFile(path).fill(0);
      } catch (e) {
        throw new FieldProblem(`pskFiles.${name}`, (e as Error).message);
      }
    }
    pskFiles[name.toLowerCase()] = path;
  }
  return pskFiles;
}
