/**
 * The systemd notify protocol (sd_notify): a `Type=notify` service tells systemd it is ready
 * (`READY=1`) or stopping (`STOPPING=1`) by sending one datagram of `KEY=value` lines to the unix
 * socket named in `$NOTIFY_SOCKET` — a path, or an abstract name written with a leading `@`.
 * Address and message building are pure; {@link SystemdNotifier} is the thin shell that sends through
 * ffi/unix-datagram.ts. Without `$NOTIFY_SOCKET` (not started by systemd) every call is a no-op.
 * @module
 */
import { sendUnixDatagram, SOCKADDR_UN_SIZE, SUN_PATH_SIZE } from "../../ffi/unix-datagram.ts";
import { AF_UNIX } from "../../ffi/libc.ts";
import { type EnvReader, processEnv } from "../env.ts";
import { logger } from "../log.ts";

/** The environment variable systemd sets for `Type=notify` services. */
export const NOTIFY_SOCKET_VAR = "NOTIFY_SOCKET";

/** `$NOTIFY_SOCKET` names no usable unix socket. */
export class NotifySocketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotifySocketError";
  }
}

/**
 * The `sockaddr_un` bytes for a `$NOTIFY_SOCKET` value: `/path` (NUL-terminated) or `@name` (abstract:
 * a leading NUL byte, no terminator, the length counts exactly the name). Anything else (a relative
 * path, systemd's `vsock:` form, a name longer than `sun_path`) is a {@link NotifySocketError}.
 */
export function notifySocketAddress(value: string): Uint8Array {
  const abstract = value.startsWith("@");
  if (!abstract && !value.startsWith("/")) {
    throw new NotifySocketError(`${NOTIFY_SOCKET_VAR}=${value}: not an absolute path or @abstract name`);
  }
  const name = new TextEncoder().encode(abstract ? value.slice(1) : value);
  const pathLen = abstract ? 1 + name.length : name.length + 1;
  if (pathLen > SUN_PATH_SIZE) {
    throw new NotifySocketError(`${NOTIFY_SOCKET_VAR}: name longer than ${SUN_PATH_SIZE - 1} bytes`);
  }
  const out = new Uint8Array(abstract ? 2 + pathLen : SOCKADDR_UN_SIZE);
  new DataView(out.buffer).setUint16(0, AF_UNIX, true);
  out.set(name, abstract ? 3 : 2); // abstract: sun_path[0] stays 0
  return out;
}

/** Notify states twofold sends. */
export interface NotifyFields {
  /** The service is up: both interfaces and the admin API answer. */
  READY?: "1";
  /** The service begins to shut down. */
  STOPPING?: "1";
  /** The service is reloading its configuration (send READY=1 when done). */
  RELOADING?: "1";
  /** One line for `systemctl status`. */
  STATUS?: string;
}

/** The datagram for `fields`: `KEY=value` lines; a newline inside a value is replaced by a space. */
export function notifyMessage(fields: NotifyFields): Uint8Array {
  const lines = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v).replaceAll("\n", " ")}`);
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

/** Sends a datagram to a socket address; the default sends through libc. */
export type DatagramSender = (addr: Uint8Array, data: Uint8Array) => void;

/**
 * Tells systemd about the service's state, when started with `$NOTIFY_SOCKET`. A failed send is
 * logged once as a warning and never stops the service (systemd then reports its own start timeout).
 */
export class SystemdNotifier {
  readonly #address: Uint8Array | null;
  readonly #send: DatagramSender;
  #warned = false;

  /** Reads `$NOTIFY_SOCKET` once; an unusable value is logged and notifications are off. */
  constructor(env: EnvReader = processEnv, send: DatagramSender = sendUnixDatagram) {
    this.#send = send;
    const value = env(NOTIFY_SOCKET_VAR);
    let address: Uint8Array | null = null;
    if (value) {
      try {
        address = notifySocketAddress(value);
      } catch (e) {
        logger("systemd").warn((e as Error).message);
      }
    }
    this.#address = address;
  }

  /** Whether systemd asked for notifications. */
  get enabled(): boolean {
    return this.#address !== null;
  }

  /** Sends `fields`; returns whether a datagram was sent. */
  notify(fields: NotifyFields): boolean {
    if (this.#address === null) return false;
    try {
      this.#send(this.#address, notifyMessage(fields));
      return true;
    } catch (e) {
      if (!this.#warned) logger("systemd").warn(`cannot notify systemd: ${(e as Error).message}`);
      this.#warned = true;
      return false;
    }
  }

  /** `READY=1` with a status line. */
  ready(status: string): boolean {
    return this.notify({ READY: "1", STATUS: status });
  }

  /** `STOPPING=1`. */
  stopping(): boolean {
    return this.notify({ STOPPING: "1", STATUS: "stopping" });
  }
}
