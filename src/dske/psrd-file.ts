/**
 * PSRD (pre-shared random data) provisioning files (docs/design.md §3.3). One block is shared by
 * exactly one (client, hub) pair; both receive a file with the same block and data, differing only in
 * `role`. The data splits into the C2H region (bytes [0, c2hLen), consumed by messages the client sends)
 * and the H2C region (bytes [c2hLen, c2hLen + h2cLen), consumed by messages the hub sends).
 *
 * The container is JSON: hex ids, base64 data and the sha256 of the data. Error messages name the field
 * or file and never contain data bytes.
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";
import { fromHex, toHex } from "../encoding.ts";
import { FileRuleError, readSecretFile } from "../config/secret-file.ts";

/** Which side of the block a file (or a stored block) belongs to. */
export type PsrdRole = "client" | "hub";

/** A decoded PSRD file: one block for one (client, hub) pair. */
export interface PsrdFile {
  /** Container version; always 1. */
  version: 1;
  /** The side this copy is for. */
  role: PsrdRole;
  /** The hub's 16-byte id. */
  hubId: Uint8Array;
  /** Where the client reaches the hub's DSKE service (HOST:PORT on the hub's wg0 address). */
  hubEndpoint: string;
  /** The client's 16-byte id at this hub. */
  clientId: Uint8Array;
  /** The client's 32-byte (aes0) WireGuard public key, bound to `clientId` at the hub. */
  peerId: Uint8Array;
  /** The block's 16-byte id; a block id is ingested at most once, ever. */
  blockId: Uint8Array;
  /** Length of the client-to-hub region in bytes. */
  c2hLen: number;
  /** Length of the hub-to-client region in bytes. */
  h2cLen: number;
  /** The pad bytes: C2H region then H2C region (`c2hLen + h2cLen` bytes). Secret. */
  data: Uint8Array;
}

/** A PSRD file or block is malformed, corrupt or refused. The message never holds data bytes. */
export class PsrdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PsrdError";
  }
}

/** Length of hub, client and block ids in bytes. */
export const PSRD_ID_BYTES = 16;
/** Length of a peer id (a WireGuard public key) in bytes. */
export const PSRD_PEER_ID_BYTES = 32;
/** Smallest allowed region (C2H or H2C) in bytes. */
export const PSRD_MIN_REGION_BYTES = 1024;
/** Largest allowed region (C2H or H2C) in bytes: 1 GiB. */
export const PSRD_MAX_REGION_BYTES = 1 << 30;
/** Region size the CLI uses when none is given: 1 MiB. */
export const PSRD_DEFAULT_REGION_BYTES = 1 << 20;
/**
 * Largest total data (C2H + H2C) the JSON container holds: 256 MiB. Base64 of more would approach the
 * JavaScript engine's maximum string length (about 2^29 characters), so larger blocks need another
 * container even though the store accepts regions up to {@link PSRD_MAX_REGION_BYTES}.
 */
export const PSRD_FILE_MAX_DATA_BYTES = 256 << 20;
/**
 * Largest PSRD file read: the base64 of {@link PSRD_FILE_MAX_DATA_BYTES} plus room for the other fields
 * and whitespace. A file above it cannot be a valid container, so it is refused before it is read.
 */
export const PSRD_FILE_MAX_BYTES = Math.ceil(PSRD_FILE_MAX_DATA_BYTES / 3) * 4 + (64 << 10);

const FIELDS = [
  "version",
  "role",
  "hub_id",
  "hub_endpoint",
  "client_id",
  "peer_id",
  "block_id",
  "c2h_len",
  "h2c_len",
  "sha256",
  "data",
] as const;

const ENDPOINT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Fills `n` bytes from the platform CSPRNG (in chunks: getRandomValues takes at most 64 KiB per call). */
function systemRandom(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** Returns the sha256 of `data`. */
function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

/** True when `s` is a valid HOST:PORT hub endpoint (host name, IPv4 or [IPv6]; port 1-65535). */
export function isValidHubEndpoint(s: string): boolean {
  const m = ENDPOINT.exec(s);
  if (!m || s.length > 261) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535;
}

function checkId(name: string, id: unknown, len: number): void {
  if (!(id instanceof Uint8Array) || id.length !== len) {
    throw new PsrdError(`PSRD file: field "${name}" must be ${len} bytes`);
  }
}

function checkRegion(name: string, len: unknown): void {
  if (
    typeof len !== "number" || !Number.isSafeInteger(len) || len < PSRD_MIN_REGION_BYTES ||
    len > PSRD_MAX_REGION_BYTES
  ) {
    throw new PsrdError(
      `PSRD file: field "${name}" must be an integer between ${PSRD_MIN_REGION_BYTES} and ${PSRD_MAX_REGION_BYTES}`,
    );
  }
}

/**
 * Checks the structure of a decoded block: version, role, id lengths, endpoint, region lengths and
 * `data.length === c2hLen + h2cLen`. Throws a {@link PsrdError} naming the first bad field.
 */
export function assertValidPsrdFile(f: PsrdFile): void {
  if (f.version !== 1) throw new PsrdError(`PSRD file: field "version" must be 1`);
  if (f.role !== "client" && f.role !== "hub") {
    throw new PsrdError(`PSRD file: field "role" must be "client" or "hub"`);
  }
  checkId("hub_id", f.hubId, PSRD_ID_BYTES);
  if (typeof f.hubEndpoint !== "string" || !isValidHubEndpoint(f.hubEndpoint)) {
    throw new PsrdError(`PSRD file: field "hub_endpoint" must be HOST:PORT (port 1-65535)`);
  }
  checkId("client_id", f.clientId, PSRD_ID_BYTES);
  checkId("peer_id", f.peerId, PSRD_PEER_ID_BYTES);
  checkId("block_id", f.blockId, PSRD_ID_BYTES);
  checkRegion("c2h_len", f.c2hLen);
  checkRegion("h2c_len", f.h2cLen);
  if (!(f.data instanceof Uint8Array) || f.data.length !== f.c2hLen + f.h2cLen) {
    throw new PsrdError(`PSRD file: field "data" must hold exactly c2h_len + h2c_len bytes`);
  }
}

/**
 * Creates a new block for one (client, hub) pair: two files with the same ids and data whose roles
 * differ. Ids not given are random; `random` (default: the platform CSPRNG) supplies ids and data.
 */
export function createPsrdPair(opts: {
  hubId?: Uint8Array;
  hubEndpoint: string;
  clientId?: Uint8Array;
  peerId: Uint8Array;
  c2hLen: number;
  h2cLen: number;
  random?: (n: number) => Uint8Array;
}): { client: PsrdFile; hub: PsrdFile } {
  const random = opts.random ?? systemRandom;
  checkRegion("c2h_len", opts.c2hLen);
  checkRegion("h2c_len", opts.h2cLen);
  const client: PsrdFile = {
    version: 1,
    role: "client",
    hubId: opts.hubId?.slice() ?? random(PSRD_ID_BYTES),
    hubEndpoint: opts.hubEndpoint,
    clientId: opts.clientId?.slice() ?? random(PSRD_ID_BYTES),
    peerId: opts.peerId.slice(),
    blockId: random(PSRD_ID_BYTES),
    c2hLen: opts.c2hLen,
    h2cLen: opts.h2cLen,
    data: random(opts.c2hLen + opts.h2cLen),
  };
  assertValidPsrdFile(client);
  const hub: PsrdFile = {
    ...client,
    role: "hub",
    hubId: client.hubId.slice(),
    clientId: client.clientId.slice(),
    peerId: client.peerId.slice(),
    blockId: client.blockId.slice(),
    data: client.data.slice(),
  };
  return { client, hub };
}

/** Encodes a block as the JSON container (hex ids, base64 data, sha256 hex of the data). */
export function encodePsrdFile(f: PsrdFile): string {
  assertValidPsrdFile(f);
  if (f.data.length > PSRD_FILE_MAX_DATA_BYTES) {
    throw new PsrdError(
      `PSRD file: c2h_len + h2c_len exceeds ${PSRD_FILE_MAX_DATA_BYTES} bytes, the JSON container's limit`,
    );
  }
  const obj: Record<(typeof FIELDS)[number], string | number> = {
    version: f.version,
    role: f.role,
    hub_id: toHex(f.hubId),
    hub_endpoint: f.hubEndpoint,
    client_id: toHex(f.clientId),
    peer_id: toHex(f.peerId),
    block_id: toHex(f.blockId),
    c2h_len: f.c2hLen,
    h2c_len: f.h2cLen,
    sha256: toHex(sha256(f.data)),
    data: Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength).toString("base64"),
  };
  return JSON.stringify(obj, FIELDS as unknown as string[], 1) + "\n";
}

function hexField(obj: Record<string, unknown>, name: string, len: number): Uint8Array {
  const v = obj[name];
  if (typeof v !== "string" || v.length !== 2 * len || !/^[0-9a-fA-F]*$/.test(v)) {
    throw new PsrdError(`PSRD file: field "${name}" must be ${2 * len} hex digits`);
  }
  return fromHex(v);
}

/**
 * Decodes and validates the JSON container: every field present and well-formed, no unknown field,
 * version 1, a known role, region lengths in range, data of the declared length whose sha256 matches.
 * Throws a {@link PsrdError} naming the bad field.
 */
export function decodePsrdFile(text: string): PsrdFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new PsrdError("PSRD file: not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new PsrdError("PSRD file: not a JSON object");
  }
  const obj = parsed as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw new PsrdError(`PSRD file: unknown field "${key.slice(0, 40)}"`);
    }
  }
  for (const key of FIELDS) {
    if (!(key in obj)) throw new PsrdError(`PSRD file: field "${key}" is missing`);
  }
  if (obj.version !== 1) throw new PsrdError(`PSRD file: field "version" must be 1`);
  if (obj.role !== "client" && obj.role !== "hub") {
    throw new PsrdError(`PSRD file: field "role" must be "client" or "hub"`);
  }
  if (typeof obj.hub_endpoint !== "string" || !isValidHubEndpoint(obj.hub_endpoint)) {
    throw new PsrdError(`PSRD file: field "hub_endpoint" must be HOST:PORT (port 1-65535)`);
  }
  checkRegion("c2h_len", obj.c2h_len);
  checkRegion("h2c_len", obj.h2c_len);
  const c2hLen = obj.c2h_len as number;
  const h2cLen = obj.h2c_len as number;
  if (c2hLen + h2cLen > PSRD_FILE_MAX_DATA_BYTES) {
    throw new PsrdError(
      `PSRD file: c2h_len + h2c_len exceeds ${PSRD_FILE_MAX_DATA_BYTES} bytes, the JSON container's limit`,
    );
  }
  const expectedSha = hexField(obj, "sha256", 32);
  const b64 = obj.data;
  if (typeof b64 !== "string" || b64.length % 4 !== 0 || !BASE64.test(b64)) {
    throw new PsrdError(`PSRD file: field "data" is not valid base64`);
  }
  const decoded = Buffer.from(b64, "base64");
  const data = new Uint8Array(decoded);
  decoded.fill(0);
  if (data.length !== c2hLen + h2cLen) {
    data.fill(0);
    throw new PsrdError(`PSRD file: field "data" holds ${data.length} bytes, not c2h_len + h2c_len`);
  }
  if (!timingSafeEqual(sha256(data), expectedSha)) {
    data.fill(0);
    throw new PsrdError(`PSRD file: field "sha256" does not match the data (corrupt or altered file)`);
  }
  const f: PsrdFile = {
    version: 1,
    role: obj.role,
    hubId: hexField(obj, "hub_id", PSRD_ID_BYTES),
    hubEndpoint: obj.hub_endpoint,
    clientId: hexField(obj, "client_id", PSRD_ID_BYTES),
    peerId: hexField(obj, "peer_id", PSRD_PEER_ID_BYTES),
    blockId: hexField(obj, "block_id", PSRD_ID_BYTES),
    c2hLen,
    h2cLen,
    data,
  };
  return f;
}

/**
 * Writes `f` to `path` with mode 0600, synced to disk. Refuses to overwrite an existing file (a block
 * must never exist twice with different data); a partly written file is removed.
 */
export async function writePsrdFile(path: string, f: PsrdFile): Promise<void> {
  const bytes = new TextEncoder().encode(encodePsrdFile(f));
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (e) {
    bytes.fill(0);
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new PsrdError(`PSRD file ${path} already exists: refusing to overwrite it; choose another path`);
    }
    throw new PsrdError(`PSRD file ${path} cannot be created (${(e as Error).name}): check the directory`);
  }
  try {
    await Deno.chmod(path, 0o600);
    for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(path).catch(() => {});
    throw new PsrdError(`PSRD file ${path} cannot be written (${(e as Error).name}): check the disk`);
  } finally {
    bytes.fill(0);
  }
  file.close();
}

/**
 * Reads and validates the PSRD file at `path` through the secret-file rules (a regular file, not a
 * symbolic link, mode 0600 or narrower, at most {@link PSRD_FILE_MAX_BYTES}); errors name the file and
 * the fix.
 */
// deno-lint-ignore require-await
export async function readPsrdFile(path: string): Promise<PsrdFile> {
  let text: string;
  try {
    const bytes = readSecretFile(path, { label: "PSRD file", maxBytes: PSRD_FILE_MAX_BYTES });
    text = new TextDecoder().decode(bytes);
    bytes.fill(0);
  } catch (e) {
    if (e instanceof FileRuleError) throw new PsrdError(e.message);
    throw e;
  }
  try {
    return decodePsrdFile(text);
  } catch (e) {
    if (e instanceof PsrdError) throw new PsrdError(`${path}: ${e.message}`);
    throw e;
  }
}
