/**
 * Groups a batch of sealed WireGuard messages into UDP GSO runs: consecutive messages to the same
 * destination (same peer endpoint) that the kernel will accept as one UDP_SEGMENT send. The
 * kernel's rules: every datagram of a run has the run's size except the last, which may be
 * shorter; at most {@link UDP_GSO_MAX_SEGMENTS} datagrams; all of them together within one IP
 * packet's payload ({@link UDP_GSO_MAX_BYTES}). A run of one is an ordinary datagram.
 *
 * Pure and allocation-free: the caller passes the lengths and a destination key per message and
 * gets run starts and lengths back in preallocated arrays.
 *
 * @module
 */

/** Most datagrams in one UDP_SEGMENT send (the kernel's UDP_MAX_SEGMENTS). */
export const UDP_GSO_MAX_SEGMENTS = 64;
/** Most UDP payload bytes in one send over IPv4 (65 535 − 20 − 8); IPv6 allows a little more. */
export const UDP_GSO_MAX_BYTES = 65507;

/**
 * Splits messages 0..count-1 (lengths `lens[i]`, destination keys `keys[i]`; equal keys = same
 * endpoint) into runs, writing run r's first message index to `runStart[r]` and its message count
 * to `runCount[r]`. Returns the number of runs. The segment size of a run is `lens[runStart[r]]`.
 */
export function planGsoRuns(
  lens: Int32Array,
  keys: Int32Array,
  count: number,
  runStart: Int32Array,
  runCount: Int32Array,
  maxSegments = UDP_GSO_MAX_SEGMENTS,
  maxBytes = UDP_GSO_MAX_BYTES,
): number {
  let runs = 0;
  let i = 0;
  while (i < count) {
    const size = lens[i];
    const key = keys[i];
    let bytes = size;
    let j = i + 1;
    while (
      j < count && j - i < maxSegments && keys[j] === key && lens[j] <= size && bytes + lens[j] <= maxBytes
    ) {
      bytes += lens[j];
      j++;
      if (lens[j - 1] < size) break; // a shorter datagram ends the run
    }
    runStart[runs] = i;
    runCount[runs] = j - i;
    runs++;
    i = j;
  }
  return runs;
}
