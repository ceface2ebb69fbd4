/**
 * The ffi/ poll and eventfd helpers (ffi/poll.ts, ffi/eventfd.ts) against the kernel, without root:
 * a PollSet reports exactly the entries that are ready, ignores negative fds, and an eventfd wakes
 * a poll until it is drained.
 * @module
 */
import assert from "node:assert/strict";
import { closeQuietly, POLLIN, POLLOUT } from "../../ffi/libc.ts";
import { createEventFd, drainEventFd, signalEventFd } from "../../ffi/eventfd.ts";
import { pollOne, PollSet } from "../../ffi/poll.ts";

Deno.test("PollSet and eventfd: ready entries reported, negative fds ignored, drained fds quiet", () => {
  const a = createEventFd();
  const b = createEventFd();
  try {
    const poll = new PollSet(3);
    poll.setCount(3);
    poll.set(0, a, POLLIN);
    poll.set(1, -1, POLLIN); // ignored by poll(2)
    poll.set(2, b, POLLIN);
    assert.equal(poll.wait(0), 0, "nothing signalled yet");
    assert.equal(poll.revents(0) | poll.revents(1) | poll.revents(2), 0);

    signalEventFd(b);
    assert.equal(poll.wait(0), 1);
    assert.equal(poll.revents(0), 0);
    assert.equal(poll.revents(1), 0);
    assert.equal(poll.revents(2) & POLLIN, POLLIN);
    assert.equal(poll.wait(0), 1, "still ready until drained");

    drainEventFd(b);
    drainEventFd(b); // draining an empty eventfd is harmless (non-blocking)
    poll.set(2, b, POLLIN); // re-arming clears the old revents
    assert.equal(poll.revents(2), 0);
    assert.equal(poll.wait(0), 0);

    signalEventFd(a);
    signalEventFd(a);
    assert.equal(poll.wait(10), 1);
    assert.equal(poll.revents(0) & POLLIN, POLLIN);
    assert.equal(poll.fd(0), a);

    poll.setCount(1);
    assert.equal(poll.wait(0), 1, "only the first entry is looked at");
    assert.throws(() => poll.setCount(4), RangeError);
  } finally {
    closeQuietly(a);
    closeQuietly(b);
  }
});

Deno.test("pollOne: the revents of one fd, 0 on a timeout", () => {
  const fd = createEventFd();
  try {
    assert.equal(pollOne(fd, POLLIN, 0), 0);
    assert.equal(pollOne(fd, POLLOUT, 0) & POLLOUT, POLLOUT, "an eventfd is writable");
    signalEventFd(fd);
    assert.equal(pollOne(fd, POLLIN, 0) & POLLIN, POLLIN);
    drainEventFd(fd);
    assert.equal(pollOne(fd, POLLIN, 0), 0);
  } finally {
    closeQuietly(fd);
  }
});
