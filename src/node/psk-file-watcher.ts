/**
 * The manual key plane: each manual aes0 peer's PSK file is installed at start and again, as a new
 * epoch, when its mtime changes (polled every second); on SIGHUP ({@link PskFileWatcher.reload})
 * every file is re-read and installed when its key differs, even with an unchanged mtime. Only a
 * keyed fingerprint of the last installed key is kept, to tell whether a re-read file holds a new one.
 * @module
 */
import { isAesPeer, type PeerConfig } from "../config/node-config.ts";
import { readPskFile } from "../keys/psk-file.ts";
import type { PskGate } from "../keys/psk-gate.ts";
import type { Logger } from "../log.ts";
import { mac } from "../crypto/blake2s.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";

/** How often the PSK files' mtimes are checked (ms). */
const PSK_FILE_POLL_MS = 1000;

/** What {@link PskFileWatcher.reload} did. */
export interface PskReload {
  /** PSK files read (one per manual AES peer with a pskFile). */
  files: number;
  /** Of those, the ones whose new key was installed. */
  installed: number;
  /** Of those, the ones that could not be read or installed (logged). */
  failed: number;
}

type Outcome = "installed" | "unchanged" | "failed";

/** The PSK files of the manual aes0 peers, installed into the gate as they change. */
export class PskFileWatcher {
  #peers: PeerConfig[];
  readonly #gate: PskGate;
  readonly #log: Logger;
  readonly #state = new Map<string, { mtime: number; epoch: number; fingerprint: Uint8Array | null }>();
  readonly #fingerprintKey = crypto.getRandomValues(new Uint8Array(32));
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Watches the files of the manual ones among `aesPeers`; call {@link start}. */
  constructor(aesPeers: PeerConfig[], gate: PskGate, log: Logger) {
    this.#peers = manualWithFile(aesPeers);
    this.#gate = gate;
    this.#log = log;
  }

  /** Installs every file now and starts polling their mtimes. */
  start(): this {
    this.#poll();
    this.#timer = setInterval(() => this.#poll(), PSK_FILE_POLL_MS);
    return this;
  }

  /** Re-reads every file now (SIGHUP); problems are logged and counted. */
  reload(): PskReload {
    const report = { files: 0, installed: 0, failed: 0 };
    for (const p of this.#peers) {
      report.files++;
      const outcome = this.#install(p, true);
      if (outcome === "installed") report.installed++;
      if (outcome === "failed") report.failed++;
    }
    return report;
  }

  /**
   * Takes a new peer list (a live map change; its AES peers count): a peer that left forgets its file
   * state, so that back in the map its file is installed again; every file of the new list is installed now.
   */
  setPeers(peers: PeerConfig[]): void {
    this.#peers = manualWithFile(peers.filter(isAesPeer));
    for (const name of this.#state.keys()) {
      if (!this.#peers.some((p) => p.name === name)) this.#state.delete(name);
    }
    this.#poll();
  }

  /** Stops polling. */
  close(): void {
    clearInterval(this.#timer);
  }

  #poll(): void {
    for (const p of this.#peers) this.#install(p);
  }

  #install(p: PeerConfig, force = false): Outcome {
    const file = p.pskFile!;
    let mtime: number;
    try {
      mtime = Deno.statSync(file).mtime?.getTime() ?? 0;
    } catch (e) {
      if (!force) return "unchanged";
      this.#log.warn(`PSK file for ${p.name}: ${file} cannot be read (${(e as Error).name})`);
      return "failed";
    }
    const prev = this.#state.get(p.name);
    if (prev && prev.mtime === mtime && !force) return "unchanged";
    try {
      const psk = readPskFile(file);
      const fingerprint = mac(this.#fingerprintKey, psk);
      if (
        force && prev?.mtime === mtime && prev.fingerprint && constantTimeEqual(prev.fingerprint, fingerprint)
      ) {
        psk.fill(0);
        return "unchanged";
      }
      const epoch = (prev?.epoch ?? 0) + 1;
      this.#state.set(p.name, { mtime, epoch, fingerprint: null });
      const result = this.#gate.install(p.publicKey, psk, epoch, "manual");
      psk.fill(0);
      if (!result.ok) {
        this.#log.warn(`PSK file for ${p.name} not installed: ${result.reason}`);
        return "failed";
      }
      this.#state.set(p.name, { mtime, epoch, fingerprint });
      return "installed";
    } catch (e) {
      this.#state.set(p.name, { mtime, epoch: prev?.epoch ?? 0, fingerprint: null });
      this.#log.warn(`PSK file for ${p.name}: ${(e as Error).message}`);
      return "failed";
    }
  }
}

/** The manual peers among `aesPeers` that name a PSK file. */
function manualWithFile(aesPeers: PeerConfig[]): PeerConfig[] {
  return aesPeers.filter((p) => p.keySource === "manual" && p.pskFile);
}
