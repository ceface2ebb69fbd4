/**
 * PKCS#11 (Cryptoki 2.40) through Deno FFI: any module, reached through `C_GetFunctionList` (the
 * module's table of function pointers), for the SKA broker's root key. Only what the broker needs:
 * open a session on the token with a given label, log in, find a secret key by label, HMAC-SHA256
 * with it inside the token (`CKM_SHA256_HMAC`), read its boolean attributes, and — for tests and lab
 * set-up — import a key as a sensitive, non-extractable generic secret.
 *
 * Layout assumptions (Linux, LP64): `CK_ULONG` and handles are 8 bytes, pointers 8 bytes,
 * `CK_ATTRIBUTE` and `CK_MECHANISM` 24 bytes, the function table starts after the 2-byte
 * `CK_VERSION` padded to 8.
 *
 * Every failure is a {@link Pkcs11Error}: one line with the call and the `CKR_` name, never a secret.
 * @module
 */

/** `CK_RV` values the callers and messages name. */
export const CKR = {
  OK: 0x0,
  SLOT_ID_INVALID: 0x3,
  GENERAL_ERROR: 0x5,
  FUNCTION_FAILED: 0x6,
  ARGUMENTS_BAD: 0x7,
  ATTRIBUTE_SENSITIVE: 0x11,
  ATTRIBUTE_TYPE_INVALID: 0x12,
  ATTRIBUTE_VALUE_INVALID: 0x13,
  DEVICE_ERROR: 0x30,
  KEY_HANDLE_INVALID: 0x60,
  KEY_TYPE_INCONSISTENT: 0x63,
  KEY_FUNCTION_NOT_PERMITTED: 0x68,
  MECHANISM_INVALID: 0x70,
  OBJECT_HANDLE_INVALID: 0x82,
  OPERATION_ACTIVE: 0x90,
  PIN_INCORRECT: 0xa0,
  PIN_INVALID: 0xa1,
  PIN_LEN_RANGE: 0xa2,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  SESSION_HANDLE_INVALID: 0xb3,
  TEMPLATE_INCOMPLETE: 0xd0,
  TEMPLATE_INCONSISTENT: 0xd1,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_WRITE_PROTECTED: 0xe2,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  USER_PIN_NOT_INITIALIZED: 0x102,
  BUFFER_TOO_SMALL: 0x150,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

const CKR_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(CKR).map(([name, value]) => [value, `CKR_${name}`]),
);

/** The `CKR_` name of `rv`, or its hex value when unknown. */
export function ckrName(rv: number): string {
  return CKR_NAMES[rv] ?? `CKR_0x${rv.toString(16)}`;
}

/** Attribute types (`CKA_`). */
export const CKA = {
  CLASS: 0x0,
  TOKEN: 0x1,
  PRIVATE: 0x2,
  LABEL: 0x3,
  VALUE: 0x11,
  KEY_TYPE: 0x100,
  SENSITIVE: 0x103,
  SIGN: 0x108,
  VERIFY: 0x10a,
  VALUE_LEN: 0x161,
  EXTRACTABLE: 0x162,
} as const;

/** Object class of a secret key (`CKO_SECRET_KEY`). */
export const CKO_SECRET_KEY = 0x4;
/** Key type of a generic secret (`CKK_GENERIC_SECRET`), the type HMAC keys use. */
export const CKK_GENERIC_SECRET = 0x10;
/** HMAC-SHA256 mechanism (`CKM_SHA256_HMAC`), full 32-byte output. */
export const CKM_SHA256_HMAC = 0x251;
/** `C_OpenSession` flags: serial (required) and read-write (needed to create objects). */
const CKF_SERIAL_SESSION = 0x4;
const CKF_RW_SESSION = 0x2;
/** `C_Login` user type: the normal user. */
const CKU_USER = 1;
/** `ulValueLen` a module reports for an attribute it will not reveal. */
const CK_UNAVAILABLE_INFORMATION = 0xffffffffffffffffn;
/** Length of an HMAC-SHA256 output. */
export const HMAC_SHA256_LEN = 32;

/** Size of `CK_ATTRIBUTE` and `CK_MECHANISM` ({ulong, pointer, ulong}). */
const TRIPLE_SIZE = 24;
/** Size reserved for `CK_TOKEN_INFO` (208 bytes on LP64); the label is its first 32 bytes. */
const TOKEN_INFO_SIZE = 256;
const TOKEN_LABEL_LEN = 32;
/** Most slots and matching objects looked at. */
const MAX_SLOTS = 256;
const MAX_MATCHES = 2;

/** Position of each function in `CK_FUNCTION_LIST` (after the version). */
const FN_INDEX = {
  C_Initialize: 0,
  C_Finalize: 1,
  C_GetSlotList: 4,
  C_GetTokenInfo: 6,
  C_OpenSession: 12,
  C_CloseSession: 13,
  C_Login: 18,
  C_Logout: 19,
  C_CreateObject: 20,
  C_DestroyObject: 22,
  C_GetAttributeValue: 24,
  C_FindObjectsInit: 26,
  C_FindObjects: 27,
  C_FindObjectsFinal: 28,
  C_SignInit: 42,
  C_Sign: 43,
} as const;
/** Offset of the first function pointer: `CK_VERSION` (2 bytes) padded to pointer alignment. */
const FN_TABLE_OFFSET = 8;

const U = "u64" as const;
const B = "buffer" as const;
const P = "pointer" as const;
const FN_TYPES = {
  C_Initialize: { parameters: [P], result: U },
  C_Finalize: { parameters: [P], result: U },
  C_GetSlotList: { parameters: ["u8", B, B], result: U },
  C_GetTokenInfo: { parameters: [U, B], result: U },
  C_OpenSession: { parameters: [U, U, P, P, B], result: U },
  C_CloseSession: { parameters: [U], result: U },
  C_Login: { parameters: [U, U, B, U], result: U },
  C_Logout: { parameters: [U], result: U },
  C_CreateObject: { parameters: [U, B, U, B], result: U },
  C_DestroyObject: { parameters: [U, U], result: U },
  C_GetAttributeValue: { parameters: [U, U, B, U], result: U },
  C_FindObjectsInit: { parameters: [U, B, U], result: U },
  C_FindObjects: { parameters: [U, B, U, B], result: U },
  C_FindObjectsFinal: { parameters: [U], result: U },
  C_SignInit: { parameters: [U, B, U], result: U },
  C_Sign: { parameters: [U, B, U, B, B], result: U },
} as const satisfies Record<keyof typeof FN_INDEX, Deno.UnsafeCallbackDefinition>;

type FnName = keyof typeof FN_TYPES;
type Fns = { [K in FnName]: Deno.UnsafeFnPointer<typeof FN_TYPES[K]>["call"] };

/** A failed PKCS#11 step; the message is one line: `PKCS#11 <call>: <CKR name>[ (<hint>)]`. */
export class Pkcs11Error extends Error {
  /** The `CK_RV` returned (0 when the failure is not a return value, e.g. a missing label). */
  readonly rv: number;
  /** The call or step that failed. */
  readonly call: string;
  constructor(call: string, rv: number, detail?: string) {
    super(`PKCS#11 ${call}: ${detail ?? ckrName(rv)}`);
    this.name = "Pkcs11Error";
    this.call = call;
    this.rv = rv;
  }
}

/** Hints for return values an operator can fix. */
const HINTS: Partial<Record<number, string>> = {
  [CKR.PIN_INCORRECT]: "wrong PIN",
  [CKR.PIN_LOCKED]: "the PIN is locked; reset it with the SO PIN",
  [CKR.PIN_LEN_RANGE]: "the PIN has the wrong length",
  [CKR.USER_PIN_NOT_INITIALIZED]: "the token's user PIN is not set",
};

function rvOf(result: number | bigint): number {
  return Number(result);
}

function ensureOk(call: string, result: number | bigint): void {
  const rv = rvOf(result);
  if (rv !== CKR.OK) {
    const hint = HINTS[rv];
    throw new Pkcs11Error(call, rv, hint ? `${ckrName(rv)} (${hint})` : undefined);
  }
}

function addressOf(buf: Uint8Array): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>));
}

/** One attribute of a template: its type and value bytes (null: ask for the length only). */
interface AttributeEntry {
  type: number;
  value: Uint8Array | null;
}

/**
 * A `CK_ATTRIBUTE[]` in memory. The value buffers stay referenced by the template so they live as long
 * as the C side may read or write them.
 */
class Template {
  readonly bytes: Uint8Array;
  readonly count: bigint;
  readonly values: (Uint8Array | null)[];
  private readonly view: DataView;
  constructor(entries: readonly AttributeEntry[]) {
    this.count = BigInt(entries.length);
    this.bytes = new Uint8Array(TRIPLE_SIZE * Math.max(1, entries.length));
    this.view = new DataView(this.bytes.buffer);
    this.values = entries.map((e) => e.value);
    entries.forEach((e, i) => {
      const o = i * TRIPLE_SIZE;
      this.view.setBigUint64(o, BigInt(e.type), true);
      this.view.setBigUint64(o + 8, e.value && e.value.length > 0 ? addressOf(e.value) : 0n, true);
      this.view.setBigUint64(o + 16, BigInt(e.value?.length ?? 0), true);
    });
  }
  /** The `ulValueLen` the module wrote back for entry `i`, or null when it is unavailable. */
  lengthOf(i: number): number | null {
    const len = this.view.getBigUint64(i * TRIPLE_SIZE + 16, true);
    return len === CK_UNAVAILABLE_INFORMATION ? null : Number(len);
  }
}

function ulong(value: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(value), true);
  return b;
}

function bool(value: boolean): Uint8Array {
  return Uint8Array.of(value ? 1 : 0);
}

function readULong(buf: Uint8Array, index = 0): bigint {
  return new DataView(buf.buffer, buf.byteOffset).getBigUint64(index * 8, true);
}

/** The boolean attributes of a key that show whether it can leave the token. */
export interface KeyProtection {
  /** `CKA_SENSITIVE`. */
  sensitive: boolean;
  /** `CKA_EXTRACTABLE`. */
  extractable: boolean;
}

/** A loaded PKCS#11 module: its function table, initialised once for this process. */
export class Pkcs11Module {
  private readonly library: Deno.DynamicLibrary<
    { C_GetFunctionList: { parameters: ["buffer"]; result: "u64" } }
  >;
  private readonly fns: Fns;
  private initialised = false;

  private constructor(path: string) {
    try {
      this.library = Deno.dlopen(path, { C_GetFunctionList: { parameters: ["buffer"], result: "u64" } });
    } catch (e) {
      throw new Pkcs11Error("load", 0, `cannot load module ${path} (${(e as Error).message.split("\n")[0]})`);
    }
    const out = new Uint8Array(8);
    ensureOk("C_GetFunctionList", this.library.symbols.C_GetFunctionList(out));
    const table = Deno.UnsafePointer.create(readULong(out));
    if (table === null) throw new Pkcs11Error("C_GetFunctionList", 0, "the module returned no function list");
    const view = new Deno.UnsafePointerView(table);
    const fns: Partial<Record<FnName, unknown>> = {};
    for (const name of Object.keys(FN_INDEX) as FnName[]) {
      const ptr = view.getPointer(FN_TABLE_OFFSET + 8 * FN_INDEX[name]);
      if (ptr === null) throw new Pkcs11Error(name, 0, "missing from the module's function list");
      // deno-lint-ignore no-explicit-any
      const fn = new Deno.UnsafeFnPointer(ptr as Deno.PointerObject<any>, FN_TYPES[name]);
      fns[name] = fn.call.bind(fn);
    }
    this.fns = fns as Fns;
  }

  /** Loads the module at `path` and calls `C_Initialize`. Throws {@link Pkcs11Error}. */
  static open(path: string): Pkcs11Module {
    const m = new Pkcs11Module(path);
    const rv = rvOf(m.fns.C_Initialize(null));
    if (rv !== CKR.OK && rv !== CKR.CRYPTOKI_ALREADY_INITIALIZED) {
      m.library.close();
      throw new Pkcs11Error("C_Initialize", rv);
    }
    m.initialised = rv === CKR.OK;
    return m;
  }

  /** The slot holding a token labelled `label`. Throws when no present token has that label. */
  findSlot(label: string): bigint {
    const count = new Uint8Array(8);
    ensureOk("C_GetSlotList", this.fns.C_GetSlotList(1, null, count));
    const n = Math.min(Number(readULong(count)), MAX_SLOTS);
    const slots = new Uint8Array(8 * Math.max(1, n));
    new DataView(count.buffer).setBigUint64(0, BigInt(n), true);
    ensureOk("C_GetSlotList", this.fns.C_GetSlotList(1, slots, count));
    const found = Number(readULong(count));
    for (let i = 0; i < found; i++) {
      const slot = readULong(slots, i);
      const info = new Uint8Array(TOKEN_INFO_SIZE);
      if (rvOf(this.fns.C_GetTokenInfo(slot, info)) !== CKR.OK) continue;
      const tokenLabel = new TextDecoder().decode(info.subarray(0, TOKEN_LABEL_LEN)).replace(/[ \0]+$/, "");
      if (tokenLabel === label) return slot;
    }
    throw new Pkcs11Error("token", 0, `no token labelled "${label}" is present`);
  }

  /** Opens a session on `slot` (read-write when `readWrite`, for creating objects). */
  openSession(slot: bigint, readWrite = false): Pkcs11Session {
    const out = new Uint8Array(8);
    const flags = CKF_SERIAL_SESSION | (readWrite ? CKF_RW_SESSION : 0);
    ensureOk("C_OpenSession", this.fns.C_OpenSession(slot, BigInt(flags), null, null, out));
    return new Pkcs11Session(this.fns, readULong(out));
  }

  /** `C_Finalize` (when this instance initialised the library) and unloads the module. */
  close(): void {
    if (this.initialised) this.fns.C_Finalize(null);
    this.initialised = false;
    this.library.close();
  }
}

/** A session on one token. */
export class Pkcs11Session {
  private loggedIn = false;
  private closed = false;
  /** @internal built by {@link Pkcs11Module.openSession} */
  constructor(private readonly fns: Fns, readonly handle: bigint) {}

  /** `C_Login` as the user with `pin` (the caller wipes it). Throws on a wrong PIN. */
  login(pin: Uint8Array): void {
    const rv = rvOf(
      this.fns.C_Login(
        this.handle,
        BigInt(CKU_USER),
        pin.length > 0 ? pin : new Uint8Array(1),
        BigInt(pin.length),
      ),
    );
    if (rv !== CKR.OK && rv !== CKR.USER_ALREADY_LOGGED_IN) ensureOk("C_Login", rv);
    this.loggedIn = true;
  }

  /**
   * The handle of the one secret key labelled `label`. Throws when none matches or more than one
   * does (an ambiguous label must not silently pick a key).
   */
  findSecretKey(label: string): bigint {
    const template = new Template([
      { type: CKA.CLASS, value: ulong(CKO_SECRET_KEY) },
      { type: CKA.LABEL, value: new TextEncoder().encode(label) },
    ]);
    ensureOk("C_FindObjectsInit", this.fns.C_FindObjectsInit(this.handle, template.bytes, template.count));
    const handles = new Uint8Array(8 * MAX_MATCHES);
    const count = new Uint8Array(8);
    try {
      ensureOk("C_FindObjects", this.fns.C_FindObjects(this.handle, handles, BigInt(MAX_MATCHES), count));
    } finally {
      this.fns.C_FindObjectsFinal(this.handle);
    }
    const n = Number(readULong(count));
    if (n === 0) throw new Pkcs11Error("key", 0, `no secret key labelled "${label}" on the token`);
    if (n > 1) throw new Pkcs11Error("key", 0, `more than one secret key labelled "${label}" on the token`);
    return readULong(handles);
  }

  /** HMAC-SHA256 of `data` with `key`, computed inside the token (`C_SignInit`/`C_Sign`). */
  hmacSha256(key: bigint, data: Uint8Array): Uint8Array {
    const mechanism = new Uint8Array(TRIPLE_SIZE);
    new DataView(mechanism.buffer).setBigUint64(0, BigInt(CKM_SHA256_HMAC), true);
    ensureOk("C_SignInit", this.fns.C_SignInit(this.handle, mechanism, key));
    const out = new Uint8Array(HMAC_SHA256_LEN);
    const outLen = ulong(out.length);
    ensureOk(
      "C_Sign",
      this.fns.C_Sign(
        this.handle,
        data.length > 0 ? data : new Uint8Array(1),
        BigInt(data.length),
        out,
        outLen,
      ),
    );
    const len = Number(readULong(outLen));
    if (len !== HMAC_SHA256_LEN) throw new Pkcs11Error("C_Sign", 0, `returned ${len} bytes, expected 32`);
    return out;
  }

  /** `CKA_SENSITIVE` and `CKA_EXTRACTABLE` of `key`. */
  protection(key: bigint): KeyProtection {
    const sensitive = new Uint8Array(1);
    const extractable = new Uint8Array(1);
    const template = new Template([
      { type: CKA.SENSITIVE, value: sensitive },
      { type: CKA.EXTRACTABLE, value: extractable },
    ]);
    ensureOk(
      "C_GetAttributeValue",
      this.fns.C_GetAttributeValue(this.handle, key, template.bytes, template.count),
    );
    return { sensitive: sensitive[0] !== 0, extractable: extractable[0] !== 0 };
  }

  /**
   * Tries to read `CKA_VALUE` of `key`. Returns the `CK_RV` and whether any value came back (for a
   * sensitive key: `CKR_ATTRIBUTE_SENSITIVE` and none). Never returns the bytes.
   */
  tryReadValue(key: bigint): { rv: number; revealed: boolean } {
    const probe = new Template([{ type: CKA.VALUE, value: null }]);
    const rv = rvOf(this.fns.C_GetAttributeValue(this.handle, key, probe.bytes, probe.count));
    const len = probe.lengthOf(0);
    if (rv !== CKR.OK || len === null || len === 0) return { rv, revealed: false };
    const value = new Uint8Array(len);
    const read = new Template([{ type: CKA.VALUE, value }]);
    const rv2 = rvOf(this.fns.C_GetAttributeValue(this.handle, key, read.bytes, read.count));
    const revealed = rv2 === CKR.OK && read.lengthOf(0) !== null;
    value.fill(0);
    return { rv: rv2, revealed };
  }

  /**
   * Imports `value` as a token-resident generic secret labelled `label` that can only sign (HMAC):
   * private, sensitive, non-extractable. For tests and lab set-up; needs a read-write session.
   */
  importSecretKey(label: string, value: Uint8Array): bigint {
    const template = new Template([
      { type: CKA.CLASS, value: ulong(CKO_SECRET_KEY) },
      { type: CKA.KEY_TYPE, value: ulong(CKK_GENERIC_SECRET) },
      { type: CKA.TOKEN, value: bool(true) },
      { type: CKA.PRIVATE, value: bool(true) },
      { type: CKA.LABEL, value: new TextEncoder().encode(label) },
      { type: CKA.SIGN, value: bool(true) },
      { type: CKA.VERIFY, value: bool(true) },
      { type: CKA.SENSITIVE, value: bool(true) },
      { type: CKA.EXTRACTABLE, value: bool(false) },
      { type: CKA.VALUE, value },
    ]);
    const out = new Uint8Array(8);
    ensureOk("C_CreateObject", this.fns.C_CreateObject(this.handle, template.bytes, template.count, out));
    return readULong(out);
  }

  /** `C_Logout` (if logged in) and `C_CloseSession`; safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.loggedIn) this.fns.C_Logout(this.handle);
    this.fns.C_CloseSession(this.handle);
  }
}
