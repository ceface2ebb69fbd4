import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { CKR, Pkcs11Module } from "../../ffi/pkcs11.ts";
import { openFileRootKey, openPkcs11RootKey, RootKeyError } from "../../src/ska/root-key.ts";
import { encodeBase64, toHex } from "../../src/encoding.ts";
import { isCI } from "../../src/lab/prereq.ts";
import { makeSoftHsmToken, requireSoftHsm } from "../helpers/softhsm.ts";

const ROOT = Uint8Array.from({ length: 32 }, (_, i) => (i * 13 + 5) & 0xff);
const KEY_LABEL = "twofold-test-root";
const missing = requireSoftHsm();
if (missing !== null && !isCI()) console.warn(`[skip] pkcs11: ${missing}`);

/** Imports ROOT into the token through a read-write session. */
function importRoot(module: string, tokenLabel: string, pin: string): void {
  const m = Pkcs11Module.open(module);
  try {
    const s = m.openSession(m.findSlot(tokenLabel), true);
    try {
      s.login(new TextEncoder().encode(pin));
      s.importSecretKey(KEY_LABEL, ROOT);
    } finally {
      s.close();
    }
  } finally {
    m.close();
  }
}

Deno.test({
  name:
    "PKCS#11 root key: token HMAC equals the file-key HMAC; the key cannot leave; bad PIN/label fail in one line",
  ignore: missing !== null && !isCI(),
  fn: async (t) => {
    if (missing !== null) throw new Error(`missing prerequisites: ${missing}`);
    const token = await makeSoftHsmToken("twofold-unit", "4711-unit");
    try {
      importRoot(token.module, token.label, token.pin);
      const spec = {
        module: token.module,
        tokenLabel: token.label,
        keyLabel: KEY_LABEL,
        pinFile: token.pinFile,
      };

      await t.step("HMAC-SHA256 inside the token equals node:crypto's and the file key's", () => {
        const root = openPkcs11RootKey(spec);
        const keyFile = `${token.dir}/root.key`;
        Deno.writeTextFileSync(keyFile, encodeBase64(ROOT) + "\n", { mode: 0o600 });
        Deno.chmodSync(keyFile, 0o600);
        const fileRoot = openFileRootKey(keyFile);
        try {
          assert.equal(root.kind, "pkcs11");
          for (
            const msg of [new Uint8Array(0), new TextEncoder().encode("twofold"), new Uint8Array(300).fill(7)]
          ) {
            const expected = createHmac("sha256", ROOT).update(msg).digest();
            assert.equal(toHex(root.hmac(msg)), toHex(new Uint8Array(expected)));
            assert.equal(toHex(fileRoot.hmac(msg)), toHex(new Uint8Array(expected)));
          }
        } finally {
          root.close();
          fileRoot.close();
        }
      });

      await t.step("CKA_EXTRACTABLE is false, CKA_SENSITIVE true, and reading CKA_VALUE fails", () => {
        const m = Pkcs11Module.open(token.module);
        const s = m.openSession(m.findSlot(token.label));
        try {
          s.login(new TextEncoder().encode(token.pin));
          const key = s.findSecretKey(KEY_LABEL);
          assert.deepEqual(s.protection(key), { sensitive: true, extractable: false });
          const read = s.tryReadValue(key);
          assert.equal(read.revealed, false);
          assert.equal(read.rv, CKR.ATTRIBUTE_SENSITIVE);
        } finally {
          s.close();
          m.close();
        }
      });

      const oneLine = (f: () => unknown, re: RegExp) => {
        assert.throws(f, (e: unknown) => {
          assert.ok(e instanceof RootKeyError, String(e));
          assert.match(e.message, re);
          assert.ok(!e.message.includes("\n"));
          assert.ok(!e.message.includes(token.pin));
          return true;
        });
      };

      await t.step("a wrong PIN is one line naming CKR_PIN_INCORRECT", () => {
        const bad = `${token.dir}/bad-pin`;
        Deno.writeTextFileSync(bad, "0000-wrong\n", { mode: 0o600 });
        Deno.chmodSync(bad, 0o600);
        oneLine(
          () => openPkcs11RootKey({ ...spec, pinFile: bad }),
          /C_Login: CKR_PIN_INCORRECT \(wrong PIN\)/,
        );
      });

      await t.step("a missing key label, a missing token, a missing module, a loose PIN file", () => {
        oneLine(() => openPkcs11RootKey({ ...spec, keyLabel: "nope" }), /no secret key labelled "nope"/);
        oneLine(() => openPkcs11RootKey({ ...spec, tokenLabel: "nope" }), /no token labelled "nope"/);
        oneLine(() => openPkcs11RootKey({ ...spec, module: `${token.dir}/none.so` }), /cannot load module/);
        const loose = `${token.dir}/loose-pin`;
        Deno.writeTextFileSync(loose, token.pin);
        Deno.chmodSync(loose, 0o644);
        oneLine(() => openPkcs11RootKey({ ...spec, pinFile: loose }), /PIN file .* 0644/);
      });
    } finally {
      token.remove();
    }
  },
});
