// The child's side of a bench's long-lived child process (bench/lib/workerProcess.mjs,
// bench/lib/postgresProcess.mjs): the messages the bench sends, kept until asked for by type.
// The bench's side is bench/lib/children.mjs.

/**
 * Starts keeping every message that arrives from the bench over the IPC channel, and returns
 * `next(type)`: the oldest kept message of that type (removed from the inbox), waiting for
 * one if none has come yet. Call it before telling the bench you are ready, so that the inbox
 * is listening when the bench's first message comes.
 */
export function openInbox() {
  const inbox = [];
  let waiting;
  process.on('message', (m) => {
    inbox.push(m);
    waiting?.();
  });
  return async function next(type) {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0];
      await new Promise((resolve) => (waiting = resolve));
      waiting = undefined;
    }
  };
}
