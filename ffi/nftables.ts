/**
 * Bindings to libnftables (`libnftables.so.1`, the library the `nft` command is built on), loaded with
 * `Deno.dlopen`: run a batch of nft commands in one transaction and read the library's error text.
 *
 * Why the library and not `nft -f -`: it is the same parser and the same netlink transaction without
 * a child process, its errors come back as text we turn into one operator line, and FFI is already how
 * twofold reaches the system (ffi/ is the one door). Four calls of a stable C API suffice.
 *
 * Loading never throws: {@link loadLibnftables} returns null when the library is missing.
 * @module
 */

const P = "pointer" as const;

/** The symbol table bound by {@link loadLibnftables}. */
export const LIBNFTABLES_SYMBOLS = {
  /** `struct nft_ctx *nft_ctx_new(uint32_t flags)`. */
  nft_ctx_new: { parameters: ["u32"], result: P },
  /** `void nft_ctx_free(struct nft_ctx *ctx)`. */
  nft_ctx_free: { parameters: [P], result: "void" },
  /** `int nft_ctx_buffer_output(struct nft_ctx *ctx)`: keep output in memory instead of stdout. */
  nft_ctx_buffer_output: { parameters: [P], result: "i32" },
  /** `int nft_ctx_buffer_error(struct nft_ctx *ctx)`: keep error text in memory instead of stderr. */
  nft_ctx_buffer_error: { parameters: [P], result: "i32" },
  /** `const char *nft_ctx_get_error_buffer(struct nft_ctx *ctx)`. */
  nft_ctx_get_error_buffer: { parameters: [P], result: P },
  /** `int nft_run_cmd_from_buffer(struct nft_ctx *ctx, const char *buf)`: 0 on success. */
  nft_run_cmd_from_buffer: { parameters: [P, "buffer"], result: "i32" },
} as const;

/** `NFT_CTX_DEFAULT`. */
const NFT_CTX_DEFAULT = 0;

/** Names tried in order by {@link loadLibnftables}. */
export const LIBNFTABLES_CANDIDATES: readonly string[] = [
  "libnftables.so.1",
  "/usr/lib/x86_64-linux-gnu/libnftables.so.1",
  "/usr/lib/aarch64-linux-gnu/libnftables.so.1",
  "/usr/lib64/libnftables.so.1",
  "/usr/lib/libnftables.so.1",
];

/** The bound functions of libnftables. */
export type Libnftables = Deno.DynamicLibrary<typeof LIBNFTABLES_SYMBOLS>["symbols"];

let loaded: Libnftables | null | undefined;

/** Opens libnftables once per isolate; null when it cannot be loaded (no library, no --allow-ffi). */
export function loadLibnftables(): Libnftables | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  for (const path of LIBNFTABLES_CANDIDATES) {
    try {
      loaded = Deno.dlopen(path, LIBNFTABLES_SYMBOLS).symbols;
      break;
    } catch {
      // try the next candidate
    }
  }
  return loaded;
}

/** A batch nftables refused: `detail` is the library's error text (whitespace folded to one line). */
export class NftablesError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = "NftablesError";
  }
}

/**
 * The `Error: …` lines of libnftables' error text joined into one line (it also echoes the offending
 * command and marks the place with carets, which say nothing on one line).
 */
export function errorLines(text: string): string {
  const errors = [...text.matchAll(/Error: *(.*)/g)].map((m) => m[1].trim());
  return (errors.length > 0 ? errors.join("; ") : text).replace(/\s+/g, " ").trim();
}

/**
 * Runs `commands` (nft syntax, several lines) as one transaction: all or nothing. Throws an
 * {@link NftablesError} when the library refuses it, or when libnftables is not installed.
 */
export function runNftCommands(commands: string): void {
  const nft = loadLibnftables();
  if (nft === null) {
    throw new NftablesError("libnftables.so.1 is not installed (Debian: apt install libnftables1)");
  }
  const ctx = nft.nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx === null) throw new NftablesError("nft_ctx_new failed (out of memory)");
  try {
    nft.nft_ctx_buffer_output(ctx);
    nft.nft_ctx_buffer_error(ctx);
    const rc = nft.nft_run_cmd_from_buffer(ctx, new TextEncoder().encode(`${commands}\0`));
    if (rc !== 0) {
      const p = nft.nft_ctx_get_error_buffer(ctx);
      const text = p === null ? "" : Deno.UnsafePointerView.getCString(p);
      throw new NftablesError(errorLines(text) || `nft_run_cmd_from_buffer returned ${rc}`);
    }
  } finally {
    nft.nft_ctx_free(ctx);
  }
}
