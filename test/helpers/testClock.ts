/**
 * A clock whose time moves only when the test says so, with timers that fire
 * when it moves past them (SPEC §10: tests never sleep to see a timer fire).
 * Pass it as `clock` to any runtime call or worker.
 */
import type { Clock } from '../../src/runtime/clock.js';
import { storeActivity } from './testStores.js';

interface Timer {
  at: number;
  order: number;
  callback: () => void;
  cancelled: boolean;
}

export interface TestClock extends Clock {
  /** Moves time forward by `ms`, firing every timer that falls due, in due order, letting the runtime react after each. */
  advance(ms: number): Promise<void>;
  /** Lets promises, I/O callbacks and immediates run, without moving time. */
  settle(): Promise<void>;
  /** Timers set and not yet fired or cancelled. */
  readonly pending: number;
}

/** Turns of the event loop `settle` gives the runtime after its store calls have drained. */
const SETTLE_TURNS = 25;

/**
 * Until no store call is in flight: a SQLite store answers within a turn, a
 * PostgreSQL one over a socket, so this waits on the wall clock for I/O (never
 * for a timer: timers fire only when the test clock moves).
 */
async function drainStore(): Promise<void> {
  while (storeActivity.inFlight > 0) await new Promise<void>((resolve) => setTimeout(resolve, 1));
}

/** One turn of the event loop, after any store call in flight has answered. */
async function turn(): Promise<void> {
  await drainStore();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

export function testClock(start = '2026-01-01T00:00:00.000Z'): TestClock {
  let t = Date.parse(start);
  let order = 0;
  let timers: Timer[] = [];
  // Settled: a whole round of turns in which the runtime made no store call.
  const settle = async (): Promise<void> => {
    for (;;) {
      const calls = storeActivity.calls;
      for (let i = 0; i < SETTLE_TURNS; i++) await turn();
      if (storeActivity.calls === calls && storeActivity.inFlight === 0) return;
    }
  };
  return {
    now: () => new Date(t),
    setTimer(callback, ms) {
      const timer: Timer = { at: t + Math.max(0, ms), order: order++, callback, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
    async advance(ms) {
      const target = t + ms;
      await settle();
      for (;;) {
        timers = timers.filter((timer) => !timer.cancelled);
        const due = timers.filter((timer) => timer.at <= target).sort((a, b) => a.at - b.at || a.order - b.order)[0];
        if (due === undefined) break;
        t = Math.max(t, due.at);
        due.cancelled = true;
        due.callback();
        await settle();
      }
      t = target;
      await settle();
    },
    settle,
    get pending() {
      return timers.filter((timer) => !timer.cancelled).length;
    },
  };
}

/** Waits (turning the event loop, never sleeping on the wall clock) until `check` holds; fails after `turns`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (await check()) return;
    await turn();
  }
  throw new Error(`timed out waiting until ${what}`);
}
