/**
 * The support bundle's contents, assembled from what was gathered (pure): a `.tar.gz` with one top
 * directory `twofold-bundle-<node>-<UTC time>/` holding the redacted config and network map, the
 * status, events, metrics, recent log lines, versions, the node's `ip` output, a `wg show all dump`
 * with keys redacted, the audit log's newest records and a `manifest.json` saying what each file is and
 * which fields were redacted. Every text file passes the known-secret scrubber last (redact.ts).
 * @module
 */
import { parseJsonc } from "../config/jsonc.ts";
import type { NodeEvent } from "../events/bus.ts";
import { type RedactionReport, redactValue, SecretScrubber } from "./redact.ts";
import { type TarEntry, writeTarGz } from "./tar.ts";

/** Format version of the bundle layout (`manifest.json` `format`). */
export const BUNDLE_FORMAT = 1;
/** Media type of the bundle. */
export const BUNDLE_CONTENT_TYPE = "application/gzip";

/** Names of the files in a bundle (inside its top directory). */
export const BUNDLE_FILES = {
  manifest: "manifest.json",
  config: "config.json",
  netmap: "netmap.json",
  status: "status.json",
  events: "events.jsonl",
  metrics: "metrics.txt",
  log: "log.txt",
  versions: "versions.json",
  wgDump: "wg-show-all-dump.txt",
  auditHead: "audit-head.jsonl",
} as const;

/** A source document that may be missing or have failed to load. */
export type Gathered<T> = { ok: T } | { missing: string } | { error: string };

/** Everything a bundle is made of, as gathered by the node (gather.ts) and the admin API. */
export interface BundleInput {
  /** Node name (for the directory name). */
  nodeName: string;
  /** When the bundle is made. */
  now: Date;
  /** The node config's JSONC text and where it was read from. */
  config: Gathered<{ path: string; text: string }>;
  /** The network map document (JSONC text) the node last accepted. */
  netmap: Gathered<{ path: string; text: string }>;
  /** `GET /v1/status` as the API answers it (JSON text). */
  status: Gathered<string>;
  /** `GET /metrics`. */
  metrics: Gathered<string>;
  /** The event history the node keeps. */
  events: NodeEvent[];
  /** Recent log lines of the node process. */
  logLines: string[];
  /** twofold, Deno, V8, kernel, libcrypto, AEAD backend. */
  versions: Record<string, string>;
  /** `ip -j …` outputs: file name (e.g. `ip-addr.json`) → output or error. */
  ip: Record<string, Gathered<string>>;
  /** `wg show all dump` of the node's interfaces, keys redacted. */
  wgDump: Gathered<string>;
  /** The newest audit records (JSONL). */
  auditHead: Gathered<{ path: string; text: string }>;
  /** Secrets the node holds (private key, PSKs, token): searched for and replaced in every file. */
  secrets: readonly (Uint8Array | string)[];
}

/** One line of the manifest: a file and what it holds (or why it is missing). */
export interface ManifestFile {
  /** File name inside the top directory. */
  name: string;
  /** What it is. */
  about: string;
  /** Size in bytes. */
  bytes: number;
}

/** `manifest.json`. */
export interface BundleManifest {
  format: number;
  node: string;
  createdAt: string;
  files: ManifestFile[];
  /** Parts that could not be included, with the reason. */
  missing: { part: string; reason: string }[];
  /** Paths of the config and map fields replaced by schema knowledge or the defensive pass. */
  redactedFields: string[];
  /** How many occurrences of a known secret the last pass replaced (0 when nothing leaked). */
  knownSecretsReplaced: number;
}

/** A bundle: its top directory name and the archive bytes. */
export interface SupportBundle {
  /** Top directory inside the archive, also the suggested file name without `.tar.gz`. */
  name: string;
  /** The `.tar.gz`. */
  bytes: Uint8Array;
  /** The manifest written into it. */
  manifest: BundleManifest;
}

/** `2026-12-06T04:47:04.123Z` → `20261206T044704Z`. */
function compactTime(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
}

/** The bundle's top directory name (also its suggested file name without `.tar.gz`). */
export function bundleName(nodeName: string, now: Date): string {
  const safe = nodeName.replace(/[^A-Za-z0-9-]/g, "_").slice(0, 40) || "node";
  return `twofold-bundle-${safe}-${compactTime(now)}`;
}

/**
 * A JSONC document as redacted, pretty JSON. Comments are dropped (they may hold anything); a document
 * that does not parse is left out entirely, never copied raw.
 */
function redactedJson(text: string, report: RedactionReport, prefix: string): Gathered<string> {
  let doc: unknown;
  try {
    doc = parseJsonc(text);
  } catch (e) {
    return { error: `does not parse (${(e as Error).message.split("\n")[0].slice(0, 200)}); left out` };
  }
  const local: RedactionReport = { redacted: [] };
  const out = JSON.stringify(redactValue(doc, local), null, 2) + "\n";
  report.redacted.push(...local.redacted.map((p) => `${prefix}:${p}`));
  return { ok: out };
}

/** Assembles and compresses the bundle of `input`. */
export async function buildSupportBundle(input: BundleInput): Promise<SupportBundle> {
  const name = bundleName(input.nodeName, input.now);
  const mtime = Math.floor(input.now.getTime() / 1000);
  const scrubber = new SecretScrubber(input.secrets);
  const report: RedactionReport = { redacted: [] };
  const files: { name: string; about: string; text: string }[] = [];
  const missing: { part: string; reason: string }[] = [];
  let replaced = 0;

  const add = (file: string, about: string, g: Gathered<string>) => {
    if ("ok" in g) {
      const s = scrubber.scrub(g.ok);
      replaced += s.count;
      files.push({ name: file, about, text: s.text });
    } else {
      const reason = "missing" in g ? g.missing : `failed: ${g.error}`;
      missing.push({ part: file, reason: scrubber.scrub(reason).text });
    }
  };
  const document = (g: Gathered<{ path: string; text: string }>, prefix: string): Gathered<string> =>
    "ok" in g ? redactedJson(g.ok.text, report, prefix) : g;
  const from = (g: Gathered<{ path: string; text: string }>) => "ok" in g ? ` (from ${g.ok.path})` : "";

  const F = BUNDLE_FILES;
  add(
    F.config,
    `node config, secrets redacted, comments dropped${from(input.config)}`,
    document(input.config, "config"),
  );
  add(F.netmap, `network map, secrets redacted${from(input.netmap)}`, document(input.netmap, "netmap"));
  add(F.status, "GET /v1/status (as `twofold status --json`)", input.status);
  add(F.events, "the node's event history, one JSON event per line, oldest first", {
    ok: input.events.map((e) => JSON.stringify(e)).join("\n") + (input.events.length > 0 ? "\n" : ""),
  });
  add(F.metrics, "GET /metrics (Prometheus text)", input.metrics);
  add(F.log, "the node's most recent log lines, oldest first", {
    ok: input.logLines.join("\n") + (input.logLines.length > 0 ? "\n" : ""),
  });
  add(F.versions, "twofold, Deno, V8, kernel and libcrypto versions", {
    ok: JSON.stringify(input.versions, null, 2) + "\n",
  });
  for (const [file, g] of Object.entries(input.ip)) {
    add(file, `\`${ipCommandOf(file)}\` in the node's namespace`, g);
  }
  add(F.wgDump, "`wg show all dump` of wg0 and aes0, private and preshared keys redacted", input.wgDump);
  add(
    F.auditHead,
    `the newest audit log records${from(input.auditHead)}`,
    "ok" in input.auditHead ? { ok: input.auditHead.ok.text } : input.auditHead,
  );

  const encoder = new TextEncoder();
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    node: input.nodeName,
    createdAt: input.now.toISOString(),
    files: files.map((f) => ({ name: f.name, about: f.about, bytes: encoder.encode(f.text).length })),
    missing,
    redactedFields: report.redacted,
    knownSecretsReplaced: replaced,
  };
  const manifestText = scrubber.scrub(JSON.stringify(manifest, null, 2) + "\n").text;
  const entries: TarEntry[] = [
    { name: `${name}/${F.manifest}`, data: manifestText, mtime },
    ...files.map((f) => ({ name: `${name}/${f.name}`, data: f.text, mtime })),
  ];
  return { name, bytes: await writeTarGz(entries), manifest };
}

/** The `ip` command lines the bundle runs, by file name. */
export const IP_COMMANDS: Readonly<Record<string, readonly string[]>> = {
  "ip-addr.json": ["-j", "-d", "addr", "show"],
  "ip-route.json": ["-j", "-4", "route", "show", "table", "all"],
  "ip-route6.json": ["-j", "-6", "route", "show", "table", "all"],
  "ip-rule.json": ["-j", "-4", "rule", "show"],
  "ip-rule6.json": ["-j", "-6", "rule", "show"],
};

function ipCommandOf(file: string): string {
  const args = IP_COMMANDS[file];
  return args ? `ip ${args.join(" ")}` : "ip";
}
