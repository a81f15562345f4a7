/**
 * Kernel errors owned by the values they produced. A kernel cannot throw: a solve that
 * meets a zero pivot leaves a status word on the device. The backend turns that word into
 * a Check (a verdict that arrives later) and attaches it, as a Fault, to the storage the
 * kernel wrote; every storage computed from it inherits the Fault. A read of a storage
 * waits for the verdicts behind it and raises the first failure, so the error reaches
 * every read of the failed value and of what was computed from it, and no other read.
 * (A synchronous backend knows at once and throws at the call instead.)
 */

/** One kernel's status, read back in the background: null when it succeeded, else the message. */
export class Check {
  /** The verdict once it has arrived; undefined while it is still on its way. */
  verdict: string | null | undefined = undefined;
  readonly arrived: Promise<void>;
  #resolve!: () => void;

  constructor() {
    this.arrived = new Promise((r) => (this.#resolve = r));
  }

  /** Records the verdict (the first one counts). */
  settle(verdict: string | null): void {
    if (this.verdict !== undefined) return;
    this.verdict = verdict;
    this.#resolve();
  }
}

/**
 * The checks a storage depends on: its own, and (through `from`) those of the storages it
 * was computed from. A DAG, so joining costs O(1) however long a loop carries a value;
 * parts found clean at a read are cut off, so the DAG stays as small as the checks pending.
 */
export class Fault {
  #checks: readonly Check[];
  #from: readonly Fault[];

  constructor(checks: readonly Check[], from: readonly Fault[] = []) {
    this.#checks = checks;
    this.#from = from;
  }

  /** The checks and faults this fault is made of directly (jit rebuilds faults on replay). */
  parts(): { checks: readonly Check[]; from: readonly Fault[] } {
    return { checks: this.#checks, from: this.#from };
  }

  /** True once every check behind it passed (cleared by `raise`). */
  get clean(): boolean {
    return this.#checks.length === 0 && this.#from.length === 0;
  }

  /**
   * Waits for every verdict behind this fault and throws the first failure as a
   * RangeError (the error a synchronous backend throws at the call). `wake` submits
   * queued work first, so the verdicts can arrive.
   */
  async raise(wake: () => void): Promise<void> {
    const all: Fault[] = [];
    const seen = new Set<Fault>();
    const stack: Fault[] = [this];
    while (stack.length) {
      const f = stack.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      all.push(f);
      stack.push(...f.#from);
    }
    const checks = all.flatMap((f) => f.#checks);
    if (checks.some((c) => c.verdict === undefined)) {
      wake();
      await Promise.all(checks.map((c) => c.arrived));
    }
    const failed = checks.find((c) => c.verdict !== null);
    if (failed) throw new RangeError(failed.verdict!);
    for (const f of all) {
      f.#checks = [];
      f.#from = [];
    }
  }
}

/** The fault of a value computed from storages with these faults (null when none is pending). */
export function joinFaults(
  faults: readonly (Fault | null)[],
  own: Check | null = null,
): Fault | null {
  const from = faults.filter((f): f is Fault => f !== null && !f.clean);
  const unique = [...new Set(from)];
  if (!own && unique.length <= 1) return unique[0] ?? null;
  return new Fault(own ? [own] : [], unique);
}
