/**
 * The `node` section: the node's name, its static private key (read under the secret-file rules) and
 * its local directories.
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import { publicKey as derivePublicKey } from "../../crypto/x25519.ts";
import { decodeBase64 } from "../../encoding.ts";
import { DEFAULT_UAPI_DIR } from "../../uapi/server.ts";
import { FileRuleError, KEY_FILE_MAX_BYTES, readSecretFile } from "../secret-file.ts";
import { FieldProblem } from "../zod-errors.ts";
import { nameField, pathField } from "./fields.ts";
import { SecretKey } from "./secret-key.ts";
import type { NodeConfig, ParseNodeConfigOptions } from "../node-config.ts";

/** Default state directory. */
export const DEFAULT_STATE_DIR = "/var/lib/twofold";

/** Schema of the `node` section. */
export const nodeSection = z.strictObject({
  name: nameField,
  privateKeyFile: pathField,
  stateDir: pathField.default(DEFAULT_STATE_DIR),
  uapiSocketDir: pathField.default(DEFAULT_UAPI_DIR),
  advertise: z.array(z.string()).optional(),
});

/**
 * Reads the static private key (one base64 line) through the secret-file rules (regular file, no
 * symbolic link, mode 0600 or narrower, small). Never echoes the contents.
 */
function readPrivateKeyFile(field: string, path: string): Uint8Array {
  const make = `create it with \`twofold keygen > ${path} && chmod 600 ${path}\``;
  let text: string;
  try {
    const bytes = readSecretFile(path, {
      label: "private key file",
      maxBytes: KEY_FILE_MAX_BYTES,
      createHint: make,
    });
    text = new TextDecoder().decode(bytes).trim();
    bytes.fill(0);
  } catch (e) {
    if (!(e instanceof FileRuleError)) throw e;
    throw new FieldProblem(field, `${path} ${e.problem}; ${e.fix}`);
  }
  let key: Uint8Array | null;
  try {
    key = /^[A-Za-z0-9+/]{43}=$/.test(text) ? decodeBase64(text) : null;
  } catch {
    key = null;
  }
  if (key === null || key.length !== 32 || key.every((b) => b === 0)) {
    key?.fill(0);
    throw new FieldProblem(
      field,
      `${path} does not hold one base64 32-byte private key (44 characters); ${make}`,
    );
  }
  return key;
}

/** `node`: paths resolved against the config's directory; the key read when files are checked. */
export function resolve(raw: z.output<typeof nodeSection>, ctx: ParseNodeConfigOptions): NodeConfig["node"] {
  const privateKeyFile = resolvePath(ctx.baseDir, raw.privateKeyFile);
  let privateKey: SecretKey | null = null;
  let ownPublicKey: Uint8Array | null = null;
  if (ctx.checkFiles) {
    privateKey = new SecretKey(readPrivateKeyFile("node.privateKeyFile", privateKeyFile));
    ownPublicKey = derivePublicKey(privateKey.bytes());
  }
  return {
    name: raw.name,
    privateKeyFile,
    stateDir: resolvePath(ctx.baseDir, raw.stateDir),
    uapiSocketDir: resolvePath(ctx.baseDir, raw.uapiSocketDir),
    privateKey,
    publicKey: ownPublicKey,
    advertise: null, // node.advertise is resolved with the routes (node/routes.ts), then set by node-config.ts
  };
}
