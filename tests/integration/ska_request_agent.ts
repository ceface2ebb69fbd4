/**
 * Runs inside a test namespace: sends one INTERMEDIATE_REQUEST for the pair (A, B) at `epoch` to the
 * broker at HOST over TCP 51831 and prints the answer's status and whether any key bytes came back.
 * Usage: ska_request_agent.ts HOST BASE64_A BASE64_B EPOCH
 */
import { decodeBase64 } from "../../src/encoding.ts";
import { decodeSkaFrame, encodeSkaFrame, SkaType } from "../../src/ska/frames.ts";
import { SKA_PORT, skaRequest } from "../../src/ska/transport.ts";

const [host, a, b, epoch] = Deno.args;
const reply = decodeSkaFrame(
  await skaRequest(
    host,
    SKA_PORT,
    encodeSkaFrame({
      type: SkaType.INTERMEDIATE_REQUEST,
      idA: decodeBase64(a),
      idB: decodeBase64(b),
      epoch: Number(epoch),
    }),
    5000,
  ),
);
if (reply.type !== SkaType.INTERMEDIATE_RESPONSE) throw new Error("unexpected reply");
console.log(JSON.stringify({ status: reply.status, keyBytes: reply.intermediate.some((x) => x !== 0) }));
