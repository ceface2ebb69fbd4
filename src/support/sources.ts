/**
 * What a running node hands the support bundle beyond the admin API's own documents: where its config
 * and state are, its devices (for the redacted `wg show all dump`) and the secrets it holds, so that the
 * bundle's last pass can search every file for them. The secrets are used for that search only and
 * never written anywhere.
 * @module
 */
import type { DumpInterface } from "./wg-dump.ts";

/** The node side of `GET /v1/debug/bundle`. */
export interface SupportSources {
  /** Node name. */
  nodeName: string;
  /** The config file the node runs (absolute), or null when unknown. */
  configPath: string | null;
  /** The node's state directory (audit log, last network map). */
  stateDir: string;
  /** Both interfaces' UAPI snapshots. */
  devices(): DumpInterface[];
  /** Key material the node holds now (private key, PSKs), for the known-secret search only. */
  secrets(): Uint8Array[];
}
