/**
 * The Rosenpass worker: a thin shell around RosenpassServer and InitHelloAdmission. It answers each
 * request with the server's actions and the next timer deadline; it reads no clock and does no
 * network I/O (the main isolate owns the UDP socket and the timers).
 */
/// <reference lib="deno.worker" />
import { InitHelloAdmission } from "./admission.ts";
import { profileByName } from "./profile.ts";
import { RosenpassServer } from "./server.ts";
import type { AdmissionVerdict } from "./admission.ts";
import type { RosenpassPeerStatus } from "./server.ts";
import type { RosenpassWorkerEvent, RosenpassWorkerRequest } from "./worker-protocol.ts";

let server: RosenpassServer | undefined;
let admission: InitHelloAdmission | undefined;
let peerIds: string[] = [];

function post(event: RosenpassWorkerEvent): void {
  self.postMessage(event);
}

function deadline(): number | null {
  const next = server!.nextDeadline();
  return next === undefined ? null : next;
}

self.onmessage = (e: MessageEvent<RosenpassWorkerRequest>) => {
  const req = e.data;
  try {
    if (req.t === "init") {
      const { init } = req;
      server = new RosenpassServer({
        profile: profileByName(init.profile),
        secretKey: init.secretKey,
        publicKey: init.publicKey,
        timers: init.timers,
      });
      for (const peer of init.peers) server.addPeer(peer);
      peerIds = init.peers.map((p) => p.id);
      admission = new InitHelloAdmission(init.admission);
      post({ t: "ready" });
      return;
    }
    if (server === undefined || admission === undefined) throw new Error("rosenpass worker: not initialized");
    if (req.t === "datagram") {
      let verdict: AdmissionVerdict | undefined;
      const actions = server.handleMessage(req.now, req.bytes, () => {
        verdict = admission!.admit(req.now, req.source, req.knownEndpoint);
        return verdict === "admitted";
      });
      post({ t: "actions", actions, nextDeadline: deadline(), admission: verdict });
    } else if (req.t === "tick") {
      post({ t: "actions", actions: server.poll(req.now), nextDeadline: deadline() });
    } else if (req.t === "initiate") {
      post({ t: "actions", actions: server.initiate(req.peer, req.now), nextDeadline: deadline() });
    } else if (req.t === "status") {
      const peers: Record<string, RosenpassPeerStatus> = {};
      for (const id of peerIds) peers[id] = server.peerStatus(id)!;
      post({ t: "status", id: req.id, peers });
    }
  } catch (err) {
    post({ t: "error", message: (err as Error).message });
  }
};
