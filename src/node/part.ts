/**
 * The shape of a running role: a composition of small named parts, each started in order and closed
 * in reverse. A part that fails to start leaves nothing behind: every part started before it is
 * closed, newest first, before the error is rethrown.
 * @module
 */

/** What a started part hands back: something to close (interfaces, sockets, timers, files). */
export interface PartHandle {
  /** Stops the part and releases what it holds; `reason` is what the operator reads. */
  close(reason?: string): unknown;
}

/** One named part of a node: started with what it needs, closed through its handle. */
export interface NodePart<H extends PartHandle | null> {
  /** The part's name, as close errors name it. */
  name: string;
  /** Starts the part; throws (with nothing of its own left behind) when it cannot. null: not needed. */
  start(): H | Promise<H>;
}

/** The parts started so far, closed in reverse order. */
export class PartStack {
  #started: { name: string; handle: PartHandle }[] = [];

  /** Starts `part` and remembers its handle for {@link close}. */
  async start<H extends PartHandle | null>(part: NodePart<H>): Promise<H> {
    const handle = await part.start();
    if (handle) this.#started.push({ name: part.name, handle });
    return handle;
  }

  /**
   * Closes every started part, newest first, each once. A part whose close throws does not keep the
   * others open; the first such error is rethrown after all are closed.
   */
  async close(reason: string): Promise<void> {
    let failure: { error: unknown } | null = null;
    for (let next = this.#started.pop(); next; next = this.#started.pop()) {
      try {
        await next.handle.close(reason);
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}
