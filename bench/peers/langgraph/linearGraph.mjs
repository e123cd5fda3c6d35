// The LangGraph JS side of bench 2 (bench/langgraph.mjs). It lives in the peer's own
// package folder so that its imports resolve to bench/peers/langgraph/node_modules and
// cantbook's install never carries LangGraph.
//
// The graph is the same shape as cantbook's bench playbook: START -> n1 -> ... -> nN -> END,
// every node a no-op that returns no state update (cantbook's no-op dispatcher returns an
// empty output). The checkpointer is LangGraph's own SqliteSaver on a connection we open,
// so both sides get the same pragmas (WAL, synchronous NORMAL or FULL). `durability: 'sync'`
// makes LangGraph persist each step's checkpoint before the next step starts, which is the
// guarantee cantbook gives (NodeStarted is committed before the node is dispatched).
import Database from 'better-sqlite3';
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Versions of what this folder installed, for the report. */
export function peerVersions() {
  const version = (name) => require(`${name}/package.json`).version;
  const db = new Database(':memory:');
  const sqlite = db.prepare('select sqlite_version() as v').get().v;
  db.close();
  return {
    langgraph: version('@langchain/langgraph'),
    checkpointSqlite: version('@langchain/langgraph-checkpoint-sqlite'),
    betterSqlite3: version('better-sqlite3'),
    sqlite,
  };
}

/**
 * Opens a SQLite file with the given pragmas, compiles the linear graph over a
 * SqliteSaver on it, and returns `invoke(threadId)` (one run = one new thread).
 * `commits` counts the saver's writes that commit: each `put` is one autocommit
 * INSERT, each `putWrites` one transaction.
 */
export function openLinearGraph({ path, synchronous, nodes }) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  const saver = new SqliteSaver(db);
  const counter = { commits: 0 };
  const put = saver.put.bind(saver);
  const putWrites = saver.putWrites.bind(saver);
  saver.put = (...args) => {
    counter.commits++;
    return put(...args);
  };
  saver.putWrites = (...args) => {
    counter.commits++;
    return putWrites(...args);
  };

  const State = Annotation.Root({ last: Annotation({ reducer: (_old, next) => next, default: () => '' }) });
  let graph = new StateGraph(State);
  for (let i = 1; i <= nodes; i++) graph = graph.addNode(`n${i}`, () => ({}));
  graph = graph.addEdge(START, 'n1');
  for (let i = 1; i < nodes; i++) graph = graph.addEdge(`n${i}`, `n${i + 1}`);
  graph = graph.addEdge(`n${nodes}`, END);
  const app = graph.compile({ checkpointer: saver });

  return {
    counter,
    invoke: (threadId) => app.invoke({}, { configurable: { thread_id: threadId }, durability: 'sync', recursionLimit: nodes + 10 }),
    /** Checkpoints written for one thread (to check a run really went through all nodes). */
    checkpointsOf: (threadId) => db.prepare('SELECT count(*) AS n FROM checkpoints WHERE thread_id = ?').get(threadId).n,
    close: () => db.close(),
  };
}
