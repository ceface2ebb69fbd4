/**
 * A 32-byte secret (private key, PSK) held by the resolved node config without ever showing its bytes.
 * @module
 */

/** A 32-byte secret that never shows its bytes in strings, JSON or `Deno.inspect`. */
export class SecretKey {
  readonly #bytes: Uint8Array;
  /** Takes ownership of `bytes` (the caller should not keep using them). */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  /** The key bytes; do not log them. */
  bytes(): Uint8Array {
    return this.#bytes;
  }
  /** Overwrites the key with zeros. */
  wipe(): void {
    this.#bytes.fill(0);
  }
  /** Always "[secret]". */
  toString(): string {
    return "[secret]";
  }
  /** Always "[secret]". */
  toJSON(): string {
    return "[secret]";
  }
  /** Keeps the bytes out of console.log and Deno.inspect. */
  [Symbol.for("Deno.customInspect")](): string {
    return "SecretKey([secret])";
  }
}
