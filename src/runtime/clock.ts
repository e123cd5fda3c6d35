/**
 * Time as the runtime sees it (SPEC §10): what time it is, and a way to be
 * called back after a delay. Injected, so that tests move time by hand and
 * never sleep to see a timer fire; the system clock otherwise.
 */
export interface Clock {
  now(): Date;
  /**
   * Calls `callback` once, `ms` milliseconds from now on this clock. Returns a
   * function that cancels the call (a no-op once it happened).
   */
  setTimer(callback: () => void, ms: number): () => void;
}

/** The longest delay setTimeout takes (about 24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function systemNow(): number {
  return Date.now();
}

/** Wall-clock time and Node's timers. */
export const systemClock: Clock = {
  now: () => new Date(),
  setTimer: (callback, ms) => realTimer(systemNow, callback, ms),
};

/**
 * The clock of a host's options: `clock` when given, else `now` with real
 * timers (a timer re-checks `now()` when it fires, so a clock that runs
 * fast or slow is honoured within a timer's granularity), else the system
 * clock.
 */
export function clockOf(options: { clock?: Clock; now?: () => Date }): Clock {
  if (options.clock !== undefined) return options.clock;
  const now = options.now;
  if (now === undefined) return systemClock;
  return { now, setTimer: (callback, ms) => realTimer(() => now().getTime(), callback, ms) };
}

/** A real timer that fires when `read()` has moved `ms` past the moment it was set. */
function realTimer(read: () => number, callback: () => void, ms: number): () => void {
  const due = read() + Math.max(0, ms);
  let handle: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = due - read();
    if (left <= 0) {
      handle = undefined;
      callback();
      return;
    }
    // An injected clock that does not move with real time is re-checked at least once a second.
    handle = setTimeout(arm, Math.min(left, MAX_TIMER_MS, read === systemNow ? MAX_TIMER_MS : 1000));
  };
  handle = setTimeout(arm, Math.min(Math.max(0, ms), MAX_TIMER_MS));
  return () => {
    if (handle !== undefined) clearTimeout(handle);
    handle = undefined;
  };
}

/** Resolves after `ms` on `clock`, or at once when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.setTimer(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
