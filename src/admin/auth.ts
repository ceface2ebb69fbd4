/**
 * Bearer-token check of the admin API. The presented token and the configured one are both hashed
 * with SHA-256 and the digests compared in constant time, so neither the position of the first wrong
 * byte nor the token's length shows in the timing. The token is never echoed or logged.
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { ApiError } from "./errors.ts";

const encoder = new TextEncoder();

/** What a request's `Authorization` header says. */
export type Credentials = { kind: "none" } | { kind: "bearer"; token: string } | { kind: "malformed" };

/** Parses an `Authorization` header value (case-insensitive `Bearer` scheme). */
export function parseAuthorization(header: string | undefined | null): Credentials {
  if (header === undefined || header === null || header.trim() === "") return { kind: "none" };
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return m ? { kind: "bearer", token: m[1] } : { kind: "malformed" };
}

/** A checker for one configured token. */
export class TokenChecker {
  readonly #digest: Uint8Array;

  /** Keeps only the digest of `token` (which must be non-empty). */
  constructor(token: string) {
    if (token.length === 0) throw new RangeError("the admin token must not be empty");
    this.#digest = sha256(encoder.encode(token));
  }

  /** Whether `presented` is the configured token (constant time in the token bytes). */
  matches(presented: string): boolean {
    return constantTimeEqual(sha256(encoder.encode(presented)), this.#digest);
  }

  /**
   * Throws the right {@link ApiError} unless `header` carries the token: 401 (with a
   * `WWW-Authenticate: Bearer` challenge added by the caller) when no bearer token is given, 403 when
   * a wrong one is.
   */
  require(header: string | undefined | null): void {
    const cred = parseAuthorization(header);
    if (cred.kind === "none") {
      throw new ApiError(
        401,
        "unauthorized",
        "this request needs the admin token: send 'Authorization: Bearer <token>' (the token is in the node's 0600 token file)",
      );
    }
    if (cred.kind === "malformed") {
      throw new ApiError(
        401,
        "unauthorized",
        "the Authorization header is not of the form 'Bearer <token>'",
      );
    }
    if (!this.matches(cred.token)) {
      throw new ApiError(403, "forbidden", "the bearer token is not this node's admin token");
    }
  }
}
