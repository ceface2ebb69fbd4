/**
 * The one reader for files the operator points twofold at: configs, and secrets (private keys, PSK
 * files, admin tokens, PSRD files). The rules live here and nowhere else:
 *
 * - Regular files only. A FIFO, a device (`/dev/zero`), a socket or a directory is refused before it is
 *   opened, so nothing blocks or reads forever; the file is then opened non-blocking and the opened
 *   file is checked to be the same regular file that was checked (no swap in between).
 * - A size cap per kind of file ({@link CONFIG_FILE_MAX_BYTES}, {@link KEY_FILE_MAX_BYTES}, PSRD files
 *   their own); at most cap + 1 bytes are ever read.
 * - Secrets: never through a symbolic link (the last path component is opened with O_NOFOLLOW; a link
 *   is refused and the message names where it leads, so no fix can touch the link's target by
 *   accident), and readable by the owner only (0600 or 0400).
 *
 * Every refusal is a {@link FileRuleError}: one line naming the file, the problem and the fix, never the
 * file's contents.
 * @module
 */
import { dirname, resolve as resolvePath } from "node:path";
import { closeFd, openReadOnly, readAtMost, statFd } from "../../ffi/file.ts";
import { EACCES, ELOOP, ENOENT, EPERM, SysError } from "../../ffi/libc.ts";

/** Largest config file (node or hub) accepted: 1 MiB, far above any real config. */
export const CONFIG_FILE_MAX_BYTES = 1 << 20;
/** Largest private key, PSK or admin token file accepted: a key is 44 characters, a token 43. */
export const KEY_FILE_MAX_BYTES = 4096;
/** Permission bits a secret file must not have: any access for group or others. */
const GROUP_OTHER_BITS = 0o077;
/** The fix for a secret reached through a symbolic link (never a chmod: that would act on the target). */
const LINK_FIX = "secret files are never read through links; give the real file's path instead (mode 0600)";

/** What kind of file is read, for the messages and the limits. */
export interface FileRule {
  /** How messages name the file: "PSK file", "admin token file", "config". */
  label: string;
  /** Largest accepted size in bytes. */
  maxBytes: number;
  /** How to make a good file, appended when it does not exist (default: check the path). */
  createHint?: string;
}

/** Which rule a refused file broke. */
export type FileRuleBroken =
  | "missing"
  | "denied"
  | "not-regular"
  | "symlink"
  | "permissions"
  | "too-large"
  | "changed"
  | "unreadable";

/** A file refused by the rules; the message is one line: `<label> <path> <problem>: <fix>`. */
export class FileRuleError extends Error {
  /** Which rule it broke. */
  readonly broken: FileRuleBroken;
  /** The path as given. */
  readonly path: string;
  /** What is wrong, e.g. "does not exist", "is a FIFO, not a regular file". */
  readonly problem: string;
  /** What to do about it. */
  readonly fix: string;
  constructor(broken: FileRuleBroken, rule: FileRule, path: string, problem: string, fix: string) {
    super(`${rule.label} ${path} ${problem}: ${fix}`);
    this.name = "FileRuleError";
    this.broken = broken;
    this.path = path;
    this.problem = problem;
    this.fix = fix;
  }
}

/** The parts of a stat result the rules look at. */
export type FileFacts = Pick<
  Deno.FileInfo,
  | "isFile"
  | "isDirectory"
  | "isSymlink"
  | "isFifo"
  | "isCharDevice"
  | "isBlockDevice"
  | "isSocket"
  | "mode"
  | "size"
>;

/** The octal permission text of `mode`, e.g. "0644". */
export function octalMode(mode: number): string {
  return "0" + (mode & 0o777).toString(8).padStart(3, "0");
}

function kindOf(f: FileFacts): string {
  if (f.isDirectory) return "a directory";
  if (f.isFifo) return "a FIFO";
  if (f.isCharDevice) return "a character device";
  if (f.isBlockDevice) return "a block device";
  if (f.isSocket) return "a socket";
  if (f.isSymlink) return "a symbolic link";
  return "not a regular file";
}

/**
 * The first rule `f` (from lstat for a secret, stat otherwise) breaks, as a problem and a fix, or null
 * when it may be read. Pure: the reader applies it to the path and again to the opened file.
 */
export function fileProblem(
  f: FileFacts,
  path: string,
  rule: FileRule,
  secret: boolean,
): { broken: FileRuleBroken; problem: string; fix: string } | null {
  if (f.isSymlink && secret) {
    return {
      broken: "symlink",
      problem: "is a symbolic link",
      fix: LINK_FIX,
    };
  }
  if (!f.isFile) {
    return {
      broken: "not-regular",
      problem: `is ${kindOf(f)}, not a regular file`,
      fix: "point it at a regular file",
    };
  }
  if (secret && f.mode !== null && (f.mode & GROUP_OTHER_BITS) !== 0) {
    return {
      broken: "permissions",
      problem: `has permissions ${octalMode(f.mode)}, wider than 0600`,
      fix: `run \`chmod 600 ${path}\``,
    };
  }
  if (f.size > rule.maxBytes) {
    return {
      broken: "too-large",
      problem: `is ${f.size} bytes, over the ${rule.maxBytes}-byte limit`,
      fix: "point it at the right file",
    };
  }
  return null;
}

/**
 * Reads a secret file (key, PSK, token, PSRD): a regular file, not a symbolic link, mode 0600 or
 * narrower, at most `rule.maxBytes`. Returns its bytes (the caller wipes them); throws
 * {@link FileRuleError}.
 */
export function readSecretFile(path: string, rule: FileRule): Uint8Array {
  return readChecked(path, rule, true);
}

/**
 * Reads a config file: a regular file (symbolic links are followed: a config is not a secret) of at
 * most `rule.maxBytes`, decoded as UTF-8. Throws {@link FileRuleError}.
 */
export function readConfigText(path: string, rule: FileRule): string {
  return new TextDecoder().decode(readChecked(path, rule, false));
}

/**
 * Checks a secret file without reading it (for files opened for writing elsewhere, such as PSRD pool
 * data): the same rules as {@link readSecretFile}. Returns the lstat result; throws {@link FileRuleError}.
 */
export function checkSecretFile(path: string, rule: FileRule): Deno.FileInfo {
  const info = statPath(path, rule, true);
  refuseIfBroken(info, path, rule, true);
  return info;
}

function statPath(path: string, rule: FileRule, secret: boolean): Deno.FileInfo {
  try {
    return secret ? Deno.lstatSync(path) : Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw missing(rule, path);
    }
    if (e instanceof Deno.errors.PermissionDenied) throw denied(rule, path);
    throw new FileRuleError(
      "unreadable",
      rule,
      path,
      `cannot be read (${(e as Error).name})`,
      "check the path",
    );
  }
}

function missing(rule: FileRule, path: string): FileRuleError {
  return new FileRuleError("missing", rule, path, "does not exist", rule.createHint ?? "check the path");
}

function denied(rule: FileRule, path: string): FileRuleError {
  return new FileRuleError(
    "denied",
    rule,
    path,
    "cannot be read (permission denied)",
    "run twofold as the file's owner",
  );
}

function refuseIfBroken(f: FileFacts, path: string, rule: FileRule, secret: boolean): void {
  const p = fileProblem(f, path, rule, secret);
  if (p === null) return;
  if (f.isSymlink && secret) throw linkError(path, rule);
  throw new FileRuleError(p.broken, rule, path, p.problem, p.fix);
}

function linkError(path: string, rule: FileRule): FileRuleError {
  let target = "elsewhere";
  try {
    target = resolvePath(dirname(path), Deno.readLinkSync(path));
  } catch {
    // gone or unreadable: the message still says it was a link
  }
  return new FileRuleError(
    "symlink",
    rule,
    path,
    `is a symbolic link (to ${target})`,
    LINK_FIX,
  );
}

function readChecked(path: string, rule: FileRule, secret: boolean): Uint8Array {
  const before = statPath(path, rule, secret);
  refuseIfBroken(before, path, rule, secret);
  let fd: number;
  try {
    fd = openReadOnly(path, { noFollow: secret });
  } catch (e) {
    const code = e instanceof SysError ? e.errno : 0;
    if (code === ELOOP) throw linkError(path, rule);
    if (code === ENOENT) throw missing(rule, path);
    if (code === EACCES || code === EPERM) throw denied(rule, path);
    throw new FileRuleError(
      "unreadable",
      rule,
      path,
      `cannot be opened (${(e as Error).message})`,
      "check the file",
    );
  }
  try {
    const opened = statFd(fd);
    if (opened.dev !== before.dev || opened.ino !== before.ino) {
      throw new FileRuleError("changed", rule, path, "changed while it was being opened", "try again");
    }
    refuseIfBroken(opened, path, rule, secret);
    let bytes: Uint8Array;
    try {
      bytes = readAtMost(fd, Math.min(opened.size, rule.maxBytes) + 1);
    } catch (e) {
      throw new FileRuleError(
        "unreadable",
        rule,
        path,
        `cannot be read (${(e as Error).message})`,
        "check the file",
      );
    }
    if (bytes.length > rule.maxBytes) {
      bytes.fill(0);
      throw new FileRuleError(
        "too-large",
        rule,
        path,
        `is over the ${rule.maxBytes}-byte limit`,
        "point it at the right file",
      );
    }
    if (bytes.length > opened.size) {
      bytes.fill(0);
      throw new FileRuleError("changed", rule, path, "grew while it was being read", "try again");
    }
    return bytes;
  } finally {
    try {
      closeFd(fd);
    } catch {
      // read-only fd: nothing to lose
    }
  }
}
