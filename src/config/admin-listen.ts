/**
 * Where the admin API listens: the address forms an operator may write (a unix socket path or a loopback
 * address, never anything else: docs/design.md §1 invariant 7), their defaults and limits. Pure; the
 * config loader and the admin server both use it.
 * @module
 */

/** Default cap on admin connections open at once (event streams included). */
export const DEFAULT_ADMIN_MAX_CONNECTIONS = 64;
/** Default cap on event streams (`GET /v1/events`) open at once. */
export const DEFAULT_ADMIN_MAX_EVENT_STREAMS = 16;

/** Where the admin API listens by default. */
export const DEFAULT_ADMIN_SOCKET = "/run/twofold/admin.sock";

/** Where the admin API listens. */
export type AdminListen = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** A listen address that is not acceptable (the message names the fix). */
export class AdminListenError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "AdminListenError";
  }
}

/** The fix an operator is told when an admin listen address is refused. */
export const ADMIN_LISTEN_FIX =
  "the admin API listens only on a unix socket (unix:/run/twofold/admin.sock or an absolute path) " +
  "or a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT); for remote access use an SSH tunnel";

/** Whether `host` is a loopback IP literal (127.0.0.0/8 or ::1). */
export function isLoopbackHost(host: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255) && v4[1] === "127";
  const h = host.toLowerCase();
  if (h === "::1") return true;
  // Expanded forms of ::1 (0:0:0:0:0:0:0:1, 0000:…:0001).
  const groups = h.split(":");
  return groups.length === 8 && groups.slice(0, 7).every((g) => /^0{1,4}$/.test(g)) &&
    /^0{0,3}1$/.test(groups[7]);
}

/**
 * Parses an admin listen address: `unix:/path`, `/abs/path.sock`, `127.0.0.1:9090`, `[::1]:9090` or
 * `localhost:9090` (bound as 127.0.0.1). Port 0 picks a free port. Throws {@link AdminListenError}
 * for a relative path, a malformed address or any non-loopback host.
 */
export function parseAdminListen(text: string): AdminListen {
  const t = text.trim();
  if (t === "") throw new AdminListenError(`an empty admin address; ${ADMIN_LISTEN_FIX}`);
  if (t.startsWith("unix:") || t.startsWith("/") || t.startsWith(".")) {
    const path = t.startsWith("unix:") ? t.slice(5) : t;
    if (!path.startsWith("/")) {
      throw new AdminListenError(
        `admin socket path ${JSON.stringify(path)} is not absolute; write e.g. unix:/run/twofold/admin.sock`,
      );
    }
    if (path.endsWith("/")) {
      throw new AdminListenError(`admin socket path ${JSON.stringify(path)} names a directory`);
    }
    return { kind: "unix", path };
  }
  let host: string, portText: string;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(t);
  if (bracketed) {
    [, host, portText] = bracketed;
  } else {
    const i = t.lastIndexOf(":");
    if (i < 0) {
      throw new AdminListenError(`admin address ${JSON.stringify(t)} has no port; ${ADMIN_LISTEN_FIX}`);
    }
    host = t.slice(0, i);
    portText = t.slice(i + 1);
    if (host.includes(":")) {
      throw new AdminListenError(
        `admin address ${JSON.stringify(t)}: write an IPv6 address in brackets, e.g. [::1]:9090`,
      );
    }
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new AdminListenError(`admin address ${JSON.stringify(t)}: the port must be 0..65535`);
  }
  const port = Number(portText);
  if (host.toLowerCase() === "localhost") host = "127.0.0.1";
  if (!isLoopbackHost(host)) {
    throw new AdminListenError(`admin address ${JSON.stringify(t)} is not loopback; ${ADMIN_LISTEN_FIX}`);
  }
  return { kind: "tcp", host, port };
}

/** The address a listener is shown as: `unix:/path`, `127.0.0.1:9090`, `[::1]:9090`. */
export function formatAdminListen(l: AdminListen): string {
  if (l.kind === "unix") return `unix:${l.path}`;
  return l.host.includes(":") ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}
