/**
 * The packet transport a device sends and receives WireGuard messages over: a datagram socket whose
 * addresses are sockaddr_in/sockaddr_in6, because the data-plane workers receive and send on the same
 * fd with recvmmsg/sendmmsg and keep endpoints as raw sockaddrs in shared memory. The control plane
 * opens it (UAPI `listen_port`) and sends its handshake messages on it. Injected so tests run devices
 * without privileges; the default is the kernel's UDP bound as configured.
 * @module
 */
import { encodeSockaddr, openUdp, sendTo } from "../../ffi/udp.ts";

/** Socket buffer size asked for (bytes), for bursts the workers drain in batches. */
const SOCKET_BUFFER_BYTES = 4 << 20;

/** An open transport socket. */
export interface TransportSocket {
  /** The datagram socket fd (handed to the data-plane workers). */
  fd: number;
  /** The bound port. */
  port: number;
}

/** Opens sockets and sends the control plane's messages. */
export interface PacketTransport {
  /**
   * True when the socket is IPv6 (dual-stack or v6-only): IPv4 endpoints are written as v4-mapped
   * sockaddr_in6. False for an IPv4 socket.
   */
  readonly v4Mapped: boolean;
  /** Opens a non-blocking socket bound to `port` (0 = any); throws SysError (EADDRINUSE) when busy. */
  open(port: number): TransportSocket;
  /** Sends `msg` to the raw sockaddr `addr[0, addrLen)` on `fd`; true when it all went out. */
  send(fd: number, msg: Uint8Array, addr: Uint8Array, addrLen: number): boolean;
}

/** Where the kernel UDP transport binds. */
export interface UdpTransportOptions {
  /** Address the socket binds to (default: all, dual-stack). */
  bindAddress?: string;
  /** Interface the socket is tied to (SO_BINDTODEVICE). */
  bindDevice?: string;
}

/** The kernel's UDP, as a device uses it in production. */
export function udpTransport(opts: UdpTransportOptions = {}): PacketTransport {
  const { bindAddress, bindDevice } = opts;
  return {
    v4Mapped: !bindAddress || bindAddress.includes(":"),
    open(port) {
      const sock = openUdp(port, {
        family: bindAddress ? (bindAddress.includes(":") ? 6 : 4) : "dual",
        bindAddress,
        bindDevice,
        rcvbuf: SOCKET_BUFFER_BYTES,
        sndbuf: SOCKET_BUFFER_BYTES,
        nonBlocking: true,
      });
      return { fd: sock.fd, port: sock.port };
    },
    send: (fd, msg, addr, addrLen) => sendTo(fd, msg, 0, msg.length, addr, addrLen) === msg.length,
  };
}

/** Null when `ip`:`port` can be written as a sockaddr of `transport`'s family; else the problem. */
export function endpointProblem(transport: PacketTransport, ip: string, port: number): string | null {
  try {
    encodeSockaddr(ip, port, new Uint8Array(32), 0, transport.v4Mapped);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
