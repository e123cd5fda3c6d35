#!/usr/bin/env node
// A stand-in agent so the starter playbooks run out of the box:
//
//   cantbook run starter/release.cantbook --agent 'exec:node starter/demo-agent.mjs' --input targetVersion=1.2.0
//
// It speaks the exec protocol (docs/adapters.md): one dispatch request as JSON on stdin, one answer
// {"status": "success", "output": {...}} or {"status": "failure", "error": "..."} as JSON on stdout.
// Answers are deterministic (no clock, no randomness) so transcripts are stable. No dependencies.
//
// DEMO_AGENT_FAIL=<nodeId>[:<n>][,...] makes those nodes fail: always, or only on their first n
// attempts (attempts are numbered per node across the run), which shows retries and escalation.
// DEMO_AGENT_EMPTY=<nodeId>[,...] makes those nodes succeed with an empty output, breaking any contract
// on what they produce (rcasd's decomposition then leaves no task_tree), which shows contracts.
//
// rcasd's decomposition also answers `tasks`, five task ids derived from the epic id (EPIC-1-T1 ..
// EPIC-1-T5): the list epic.cantbook's map node runs ivtr.cantbook over.

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);

let request;
try {
  request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
} catch (error) {
  process.stderr.write(`demo-agent: stdin is not a JSON dispatch request: ${error.message}\n`);
  process.exit(2);
}
if (typeof request !== 'object' || request === null || typeof request.nodeId !== 'string') {
  process.stderr.write('demo-agent: the request has no "nodeId"\n');
  process.exit(2);
}

const reply = answer(request, process.env.DEMO_AGENT_FAIL ?? '', process.env.DEMO_AGENT_EMPTY ?? '');
// What a real agent would log as it works: cantbook keeps it as the attempt's log (`cantbook show --logs`).
process.stderr.write(`demo-agent: ${request.nodeId} attempt ${request.iteration ?? 1}: ${reply.status === 'success' ? `answered ${Object.keys(reply.output ?? {}).join(', ') || 'nothing'}` : reply.error}\n`);
process.stdout.write(`${JSON.stringify(reply)}\n`);

/** The whole agent: a pure function of the request and the DEMO_AGENT_FAIL and DEMO_AGENT_EMPTY values. */
function answer(req, failSpec, emptySpec) {
  const attempt = Number.isInteger(req.iteration) ? req.iteration : 1;
  const failUntil = failures(failSpec).get(req.nodeId);
  if (failUntil !== undefined && attempt <= failUntil) {
    return {
      status: 'failure',
      error: `demo agent: DEMO_AGENT_FAIL makes '${req.nodeId}' fail (attempt ${attempt}${Number.isFinite(failUntil) ? ` of the first ${failUntil}` : ''})`,
    };
  }
  if (emptySpec.split(',').some((id) => id.trim() === req.nodeId)) return { status: 'success', output: {} };
  return { status: 'success', output: outputFor(req, attempt) };
}

/** Parses "a,b:2" into Map {a => Infinity, b => 2}. */
function failures(spec) {
  const map = new Map();
  for (const part of spec.split(',')) {
    const [id, count] = part.trim().split(':');
    if (!id) continue;
    const n = count === undefined ? Infinity : Number.parseInt(count, 10);
    map.set(id, Number.isNaN(n) ? Infinity : n);
  }
  return map;
}

function outputFor(req, attempt) {
  const b = req.bindings ?? {};
  const ctx = req.context ?? {};
  const pick = (key, fallback) => b[key] ?? (typeof ctx[key] === 'string' ? ctx[key] : fallback);
  const epic = pick('epicId', req.taskId);
  const task = pick('taskId', req.taskId);
  const version = pick('targetVersion', '0.0.0');

  switch (req.nodeId) {
    // release
    case 'version_bump':
      return { version };
    case 'changelog':
      return {
        changelog: `## ${version}\n\n- Bump the version to ${version}.\n- Collect the changes since ${previousVersion(version)}.`,
      };
    case 'publish':
      return { published: { version, channel: pick('channel', 'latest') } };

    // rcasd
    case 'research':
      return {
        research: {
          epicId: epic,
          scope: pick('scope', 'global'),
          summary: `Prior art and constraints for ${epic} gathered.`,
          openQuestions: ['Which components own the data?', 'What is the rollout plan?'],
        },
      };
    case 'consensus':
      return { consensus: { epicId: epic, decision: 'Option B: extend the existing service.', summary: `Team agreed on an approach for ${epic}.` } };
    case 'architecture':
      return { architecture: { epicId: epic, components: ['api', 'worker', 'store'], summary: `Components and data flow for ${epic} drawn.` } };
    case 'specification':
      return { specification: { epicId: epic, requirements: 3, summary: `Testable specification for ${epic} written.` } };
    case 'decomposition':
      return {
        decomposition: {
          epicId: epic,
          tasks: [`${epic}-T1: api`, `${epic}-T2: worker`, `${epic}-T3: store`],
          summary: `${epic} split into 3 tasks.`,
        },
        // The ids epic.cantbook's map runs ivtr for, one child run per id: five, so the map's
        // max_concurrency of 3 has something to hold back. Derived from the epic id only.
        tasks: taskIds(epic, 5),
        // What rcasd's `ensures: { schema: task_tree }` checks: a non-empty list of tasks, each with a
        // title and at least one acceptance criterion.
        task_tree: [
          { id: `${epic}-T1`, title: 'api', acceptance: ['The API serves the new endpoints.'] },
          { id: `${epic}-T2`, title: 'worker', acceptance: ['The worker processes queued jobs.'], depends: [`${epic}-T1`] },
          { id: `${epic}-T3`, title: 'store', acceptance: ['The store keeps the records.'], depends: [`${epic}-T1`] },
        ],
      };

    // review
    case 'build':
      return { build: { change: pick('change', task), artifact: `${pick('change', task)}.tgz` } };
    case 'scan':
      return { scan: { findings: 0, summary: 'No known vulnerabilities.' } };
    case 'bench':
      return { bench: { regression: false, summary: 'Within 2% of main.' } };
    case 'docs_review':
      return { docs: { complete: true, summary: 'User-facing changes are documented.' } };
    case 'merge':
      return { merged: { change: pick('change', task) } };

    // ivtr
    case 'implement': {
      const fixing = typeof ctx.__lastError === 'string' ? ctx.__lastError : undefined;
      return {
        implementation: {
          taskId: task,
          attempt,
          summary: fixing === undefined ? `Implemented ${task}.` : `Reworked ${task} after: ${fixing}`,
          filesChanged: ['src/feature.ts', 'test/feature.test.ts'],
        },
      };
    }
    case 'validate':
      return { validation: { taskId: task, passed: true, summary: `${task} matches its specification.` } };
    case 'test':
      return { tests: { taskId: task, passed: 12, failed: 0, summary: `12 tests pass for ${task}.` } };

    default:
      return { [req.nodeId]: { summary: `demo agent handled '${req.nodeId}' (agent '${req.agentId}', attempt ${attempt})` } };
  }
}

/** taskIds("EPIC-1", 3) -> ["EPIC-1-T1", "EPIC-1-T2", "EPIC-1-T3"]. */
function taskIds(epic, count) {
  return Array.from({ length: count }, (_, index) => `${epic}-T${index + 1}`);
}

/** "1.2.0" -> "1.1.0", "2.0.0" -> "1.0.0"; anything else -> "the previous release". */
function previousVersion(version) {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!match) return 'the previous release';
  const [major, minor, patch] = match.slice(1).map(Number);
  if (patch > 0) return `${major}.${minor}.${patch - 1}`;
  if (minor > 0) return `${major}.${minor - 1}.0`;
  return major > 0 ? `${major - 1}.0.0` : 'the previous release';
}
