// The DBOS Transact side of bench 8 (bench/postgres.mjs). It lives in the peer's own package
// folder so that its imports resolve to bench/peers/dbos/node_modules and cantbook's install
// never carries DBOS.
//
// The workflow is the same shape as cantbook's bench playbook: ten steps n1 -> ... -> n10 run
// one after another, each a registered DBOS step (`DBOS.registerStep`) that does no work and
// returns a small value ({nK: 'done'}, what cantbook's bench dispatcher returns for node nK);
// the workflow (`DBOS.registerWorkflow`) returns the ten outputs merged, as cantbook's run ends
// with them in its context. DBOS checkpoints each step's output in its system database
// (one `operation_outputs` row, committed after the step returns) and the workflow's status,
// input and output in `workflow_status`. Workflows run in this process, called directly (no
// queue), with the workflow id the caller gives.
//
//   node bench/peers/dbos/linearWorkflow.mjs <postgres URL> [workflows] [in flight]
//
// runs that many workflows (default 200) with that many in flight (default 16) on the
// URL's database, the DBOS tables in schema `cantbook_bench_dbos_cli`, and prints workflows/s
// and steps/s. bench/postgres.mjs uses the exports instead, from a long-lived child process.
import { DBOS } from '@dbos-inc/dbos-sdk';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** Versions of what this folder installed, for the report (read from node_modules: DBOS exports no package.json). */
export function peerVersions() {
  const version = (name) => JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
  return { dbos: version('@dbos-inc/dbos-sdk'), pg: version('pg') };
}

/** The node-postgres DBOS loads (this folder's), so a caller can count its queries. */
export function peerPg() {
  return require('pg');
}

/**
 * DBOS parses its system database URL with WHATWG `URL`, which refuses an empty host
 * (`postgresql://user@/db?host=/socket/dir`, the form scripts/pgTestCluster.sh prints). Give
 * such a URL a placeholder host: node-postgres lets the `host` parameter win, so it still
 * connects over the socket.
 */
export function dbosUrlOf(url) {
  return url.replace(/^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)\//, '$1localhost/');
}

/**
 * Registers the workflow, configures DBOS on `url` (its system tables in `schema`; default
 * pool of 10 connections, as cantbook's store) and launches it. Returns `run(workflowId)`,
 * which resolves to the workflow's output, `stepCalls()` (how many times a step function
 * ran, for the exactly-once check) and `close()`.
 */
export async function openLinearWorkflow({ url, schema, nodes = 10, logLevel = 'error' }) {
  let calls = 0;
  const steps = Array.from({ length: nodes }, (_, i) => {
    const key = `n${i + 1}`;
    return DBOS.registerStep(async () => {
      calls++;
      return { [key]: 'done' };
    }, { name: key });
  });
  const linear = DBOS.registerWorkflow(async () => {
    const context = {};
    for (const step of steps) Object.assign(context, await step());
    return context;
  }, { name: `linear${nodes}` });
  DBOS.setConfig({
    name: 'cantbook-bench',
    applicationVersion: '1',
    systemDatabaseUrl: dbosUrlOf(url),
    systemDatabaseSchemaName: schema,
    logLevel,
    runAdminServer: false,
  });
  await DBOS.launch();
  return {
    nodes,
    run: (workflowId) => DBOS.withNextWorkflowID(workflowId, () => linear()),
    /** How many steps DBOS recorded for a workflow (its `operation_outputs` rows). */
    recordedSteps: async (workflowId) => (await DBOS.listWorkflowSteps(workflowId))?.length ?? 0,
    stepCalls: () => calls,
    close: () => DBOS.shutdown(),
  };
}

/** Runs `runs` workflows with `lanes` in flight (each lane one workflow after another). */
export async function runLanes(workflow, { runs, lanes, idOf }) {
  let next = 0;
  const lane = async () => {
    while (next < runs) {
      const i = next++;
      const out = await workflow.run(idOf(i));
      if (Object.keys(out).length !== workflow.nodes) throw new Error(`workflow ${idOf(i)} returned ${JSON.stringify(out)}, expected ${workflow.nodes} outputs`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, runs) }, lane));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, runsText = '200', lanesText = '16'] = process.argv.slice(2);
  if (url === undefined) {
    console.error('usage: node bench/peers/dbos/linearWorkflow.mjs <postgres URL> [workflows] [in flight]');
    process.exit(2);
  }
  const runs = Number(runsText);
  const lanes = Number(lanesText);
  const workflow = await openLinearWorkflow({ url, schema: 'cantbook_bench_dbos_cli' });
  const stamp = Date.now().toString(36);
  const start = performance.now();
  await runLanes(workflow, { runs, lanes, idOf: (i) => `cli-${stamp}-${i}` });
  const ms = performance.now() - start;
  await workflow.close();
  console.log(JSON.stringify({ ...peerVersions(), workflows: runs, inFlight: lanes, ms: Math.round(ms), workflowsPerSec: Math.round((runs / ms) * 1000 * 10) / 10, stepsPerSec: Math.round(((runs * 10) / ms) * 1000) }));
}
