// The cantbook viewer: runs, pending approvals, and one run's statechart and
// timeline. Plain browser JavaScript, no dependencies, no network beyond this
// server. Everything shown is built with DOM calls (textContent), never HTML
// strings, so run data cannot inject markup.

import { drawChart } from './chart.js';

const KEY_STORAGE = 'cantbook.sessionKey';
const app = document.getElementById('app');

// 1. The session key arrives in the URL fragment (#key=…): keep it, then drop it from the address bar.
if (location.hash.startsWith('#key=')) {
  localStorage.setItem(KEY_STORAGE, decodeURIComponent(location.hash.slice('#key='.length)));
  history.replaceState(null, '', `${location.pathname}#/`);
}

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function api(path, body) {
  const headers = { 'x-cantbook-key': localStorage.getItem(KEY_STORAGE) ?? '' };
  const init = body === undefined ? { headers } : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const value = await response.json().catch(() => ({ error: { code: 'E_INTERNAL', message: `HTTP ${response.status}` } }));
  if (!response.ok) throw new ApiError(value.error?.code ?? 'E_INTERNAL', value.error?.message ?? `HTTP ${response.status}`);
  return value;
}

/** h('div', {class: 'x', dataset: {...}, onclick}, child, 'text', …) */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null && child !== false) element.append(child instanceof Node ? child : String(child));
  return element;
}

const badge = (status) => h('span', { class: `badge ${status}`, dataset: { status } }, status);
/** A run id, short: a child run's id repeats its parent's, so it is shown by what it adds (`….plan.1.0`). */
const shortId = (id, parentId) => {
  if (parentId && id.startsWith(`${parentId}.`)) return `…${id.slice(parentId.length)}`;
  return id.length > 13 ? `${id.slice(0, 8)}…` : id;
};
const time = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–');

function errorBox(error) {
  const code = error instanceof ApiError ? error.code : 'E_INTERNAL';
  return h('p', { class: 'message error', role: 'alert', dataset: { code } }, `error[${code}]: ${error.message}`);
}

// 2. Routing: #/ lists runs and gates; #/runs/<id> shows one run.
async function route() {
  const match = /^#\/runs\/([^/]+)$/.exec(location.hash);
  try {
    if (!localStorage.getItem(KEY_STORAGE)) throw new ApiError('E_UI_FORBIDDEN', 'this viewer needs its session key: open the link `cantbook ui` printed in its terminal');
    if (match) await showRun(decodeURIComponent(match[1]));
    else await showHome();
  } catch (error) {
    app.replaceChildren(errorBox(error));
  }
}

async function showHome() {
  document.onkeydown = null;
  const { label, runs, approvals } = await api('/api/runs');
  document.getElementById('label').textContent = label;
  const gates = approvals.length === 0
    ? h('p', { class: 'muted' }, 'No gate is waiting for a decision.')
    : h('table', { class: 'list', id: 'approvals' },
        h('thead', {}, h('tr', {}, ['Run', 'Gate', 'Prompt', 'Requested', 'Expires'].map((t) => h('th', {}, t)))),
        h('tbody', {}, approvals.map((gate) => h('tr', { dataset: { runId: gate.runId } },
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(gate.runId)}`, title: gate.runId }, shortId(gate.runId))),
          h('td', {}, gate.nodeId, gate.escalation ? h('span', { class: 'tag escalation' }, `escalation · ${gate.escalation.on}`) : ''),
          h('td', { class: 'prompt' }, gate.prompt),
          h('td', {}, time(gate.requestedAt)),
          h('td', {}, time(gate.expiresAt))))));
  const list = runs.length === 0
    ? h('p', { class: 'muted' }, 'No runs yet: start one with `cantbook run <file>`.')
    : h('table', { class: 'list', id: 'runs' },
        h('thead', {}, h('tr', {}, ['Run', 'Playbook', 'Status', 'Node', 'Started', 'Updated'].map((t) => h('th', {}, t)))),
        h('tbody', {}, runs.map((run) => h('tr', { dataset: { runId: run.runId, depth: run.depth ?? 0 }, class: run.depth > 0 ? 'child-run' : undefined },
          // A child run (SPEC §12) sits under its parent, indented by its depth in the tree.
          h('td', {},
            run.depth > 0 ? h('span', { class: 'tree' }, `${'   '.repeat(run.depth - 1)}↳ `) : '',
            h('a', { href: `#/runs/${encodeURIComponent(run.runId)}`, title: run.runId }, shortId(run.runId, run.parentRunId))),
          h('td', {}, run.playbookName),
          h('td', {}, badge(run.status)),
          h('td', {}, run.currentNode ?? '–'),
          h('td', {}, time(run.startedAt)),
          h('td', {}, time(run.updatedAt))))));
  app.replaceChildren(
    h('section', {}, h('h2', {}, `Waiting for approval (${approvals.length})`), gates),
    h('section', {}, h('h2', {}, `Runs (${runs.length})`), list),
  );
}

// 3. One run: statechart + timeline + the state at the selected event + the gate form.
async function showRun(runId) {
  const [detail, { steps }] = await Promise.all([api(`/api/runs/${encodeURIComponent(runId)}`), api(`/api/runs/${encodeURIComponent(runId)}/states`)]);
  const { run, graph, approvals, playbook, parent, children = [] } = detail;
  let selected = steps.length - 1;

  const chart = drawChart(graph);
  const timeline = h('ol', { class: 'timeline', id: 'timeline' }, steps.map((step, index) =>
    h('li', { dataset: { seq: step.seq, type: step.type }, onclick: () => select(index) },
      h('span', { class: 'seq' }, `#${step.seq}`),
      h('span', { class: `type ${step.type}` }, step.type),
      h('span', { class: 'summary' }, step.summary),
      h('time', {}, time(step.at)))));
  const position = h('p', { class: 'position', id: 'position' });
  const context = h('pre', { class: 'context', id: 'context' });
  const stepper = h('div', { class: 'stepper' },
    h('button', { id: 'first', onclick: () => select(0), title: 'first event' }, '« First'),
    h('button', { id: 'prev', onclick: () => select(selected - 1), title: 'previous event (←)' }, '◀ Prev'),
    h('span', { id: 'counter', class: 'counter' }),
    h('button', { id: 'next', onclick: () => select(selected + 1), title: 'next event (→)' }, 'Next ▶'),
    h('button', { id: 'last', onclick: () => select(steps.length - 1), title: 'latest event' }, 'Latest »'));

  function select(index) {
    if (index < 0 || index >= steps.length) return;
    selected = index;
    const step = steps[index];
    [...timeline.children].forEach((item, i) => item.classList.toggle('selected', i === index));
    timeline.children[index]?.scrollIntoView({ block: 'nearest' });
    // Which nodes are active, and in which phase, is what the machine state says (activeNodes; several at
    // once inside a group); a final state has none, so the run's position (the end, or where it failed) is shown.
    const active = new Map(typeof step.value === 'string' ? (step.node === null ? [] : [[step.node, step.phase]]) : step.activeNodes.map((a) => [a.nodeId, a.phase]));
    const outcome = outcomesUpTo(steps, index);
    for (const node of chart.querySelectorAll('g.node')) {
      const id = node.dataset.node;
      const phase = active.get(id);
      node.dataset.active = String(phase !== undefined);
      node.dataset.phase = phase ?? '';
      node.dataset.state = phase ?? outcome.get(id) ?? '';
      node.classList.toggle('visited', outcome.has(id));
    }
    document.getElementById('counter').textContent = `event ${index + 1} of ${steps.length}`;
    const note = step.node === null ? '' : gateNote(steps, index, step.node);
    position.replaceChildren(
      h('strong', {}, step.node === null ? '(no node)' : step.node === '@completed' ? 'completed' : step.node),
      step.phase ? ` · ${step.phase}` : '',
      note ? h('span', { class: 'gate-note', id: 'gate-note' }, ` · ${note}`) : '',
      step.attempt > 0 && step.node !== '@completed' ? ` · attempt ${step.attempt}` : '',
      ' · run ', badge(step.status),
      step.error ? h('span', { class: 'error-text' }, ` ${step.error.cause}: ${step.error.message}`) : '');
    context.textContent = JSON.stringify({ value: step.value, context: step.context, event: step.data }, null, 2);
  }

  const pending = approvals.find((gate) => gate.status === 'pending');
  const notice = sessionStorage.getItem('cantbook.notice');
  sessionStorage.removeItem('cantbook.notice');
  app.replaceChildren(
    notice ? h('p', { class: 'message ok', id: 'notice', role: 'status' }, notice) : '',
    h('div', { class: 'run-head' },
      h('a', { href: '#/', class: 'back' }, '← all runs'),
      h('h2', {}, playbook.name, ' ', badge(run.status)),
      h('p', { class: 'muted ids' }, `run ${run.runId} · playbook sha256 ${playbook.sourceHash.slice(0, 12)} · ${steps.length} events`),
      parent ? parentLine(parent) : '',
      playbook.description ? h('p', { class: 'muted' }, playbook.description) : ''),
    pending ? gateForm(run.runId, pending) : '',
    children.length > 0 ? childrenSection(run.runId, children) : '',
    h('div', { class: `run-grid${Number(chart.dataset.width) > 1000 ? ' wide' : ''}` },
      h('section', { class: 'chart-panel' }, h('h3', {}, 'Statechart'), chart, position),
      h('section', { class: 'timeline-panel' }, h('h3', {}, 'Timeline'), stepper, timeline)),
    h('section', {}, h('h3', {}, 'State at the selected event'), context),
  );
  document.onkeydown = (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    if (event.key === 'ArrowLeft') select(selected - 1);
    if (event.key === 'ArrowRight') select(selected + 1);
  };
  select(selected);
}

/** "child run of <parent> (node implement_all, item 2) · epic · paused": the link up the tree (SPEC §12). */
function parentLine(parent) {
  return h('p', { class: 'parent-run', id: 'parent-run', dataset: { runId: parent.runId } },
    'child run of ',
    h('a', { href: `#/runs/${encodeURIComponent(parent.runId)}`, title: parent.runId }, parent.playbookName ?? shortId(parent.runId)),
    ` (${parent.place})`,
    parent.status ? [' · ', badge(parent.status)] : '');
}

/** The runs this one started, in the order it started them, each with its status and where it sits. */
function childrenSection(runId, children) {
  return h('section', { class: 'children', id: 'children' },
    h('h3', {}, `Child runs (${children.length})`),
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Run', 'Playbook', 'Status', 'Started by', 'Node'].map((t) => h('th', {}, t)))),
      h('tbody', {}, children.map((child) => h('tr', { dataset: { runId: child.runId } },
        h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(child.runId)}`, title: child.runId }, shortId(child.runId, runId))),
        h('td', {}, child.playbookName),
        h('td', {}, badge(child.status)),
        h('td', {}, child.place ?? '–'),
        h('td', {}, child.status === 'completed' ? '–' : (child.currentNode ?? '–')))))));
}

/**
 * How each node's latest attempt ended by step `index`: `done` (it succeeded, or its gate was approved and
 * resumed), `failed`, `stopped` (aborted or cancelled: a sibling branch failed), or `started` (still going, or interrupted). Shown for nodes that are not active.
 */
function outcomesUpTo(steps, index) {
  const outcome = new Map();
  for (const step of steps.slice(0, index + 1)) {
    const id = step.data?.nodeId;
    if (typeof id !== 'string') continue;
    if (step.type === 'NodeStarted' || step.type === 'RunPaused') outcome.set(id, 'started');
    else if (step.type === 'NodeSucceeded' || step.type === 'RunResumed') outcome.set(id, 'done');
    else if (step.type === 'NodeFailed' && step.data.aborted === true) outcome.set(id, 'stopped');
    else if (step.type === 'NodeFailed' || step.type === 'ApprovalRejected' || step.type === 'BranchFailed' || step.type === 'RunFailed') outcome.set(id, 'failed');
    else if (step.type === 'ApprovalCancelled') outcome.set(id, 'stopped');
  }
  return outcome;
}

/**
 * What the node's latest gate was by step `index`, when it was not a plain approval: an escalation gate an error
 * handler opened on a work node (SPEC §13), or a gate its policy passed without a human. '' otherwise, and once
 * the node starts again.
 */
function gateNote(steps, index, nodeId) {
  let note = '';
  for (const step of steps.slice(0, index + 1)) {
    if (step.data?.nodeId !== nodeId) continue;
    if (step.type === 'RunPaused') note = step.data.escalation ? `escalation (${step.data.escalation.on})` : '';
    else if (step.type === 'ApprovalGranted' && step.data.auto === true) note = `auto-passed by policy (rule ${step.data.rule ?? 'none'})`;
    else if (step.type === 'NodeStarted') note = '';
  }
  return note;
}

function gateForm(runId, gate) {
  const message = h('div', { id: 'gate-message' });
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'cbk1.…', required: true });
  const approver = h('input', { id: 'approver', name: 'approver', autocomplete: 'name', placeholder: 'your name', required: true });
  const reason = h('input', { id: 'reason', name: 'reason', placeholder: 'why (required to reject)' });
  const buttons = [];
  async function decide(decision) {
    buttons.forEach((button) => (button.disabled = true));
    message.replaceChildren(h('p', { class: 'message' }, decision === 'approve' ? 'Approving and resuming the run…' : 'Rejecting…'));
    try {
      const { result } = await api(`/api/runs/${encodeURIComponent(runId)}/${decision}`, { token: token.value, approver: approver.value, reason: reason.value });
      sessionStorage.setItem('cantbook.notice', `${decision === 'approve' ? 'Approved' : 'Rejected'} by ${approver.value.trim()}; the run is ${result?.terminalStatus ?? 'updated'}.`);
      await route();
    } catch (error) {
      message.replaceChildren(errorBox(error));
      buttons.forEach((button) => (button.disabled = false));
    }
  }
  buttons.push(
    h('button', { id: 'approve', class: 'primary', type: 'button', onclick: () => decide('approve') }, 'Approve'),
    h('button', { id: 'reject', class: 'danger', type: 'button', onclick: () => decide('reject') }, 'Reject'));
  const escalation = gate.escalation;
  return h('section', { class: `gate${escalation ? ' escalation' : ''}`, id: 'gate', dataset: { approvalId: gate.approvalId, kind: escalation ? 'escalation' : 'approval' } },
    h('h3', {}, escalation
      ? `Escalation at '${gate.nodeId}' (${escalation.on}) is waiting for a decision`
      : `Gate '${gate.nodeId}' is waiting for a decision`),
    h('p', { class: 'prompt' }, gate.prompt),
    h('p', { class: 'muted' }, `requested ${time(gate.requestedAt)}${gate.expiresAt ? ` · expires ${time(gate.expiresAt)}` : ''}`),
    h('form', { class: 'gate-form', onsubmit: (event) => event.preventDefault() },
      h('label', {}, 'Resume token', token),
      h('label', {}, 'Approver', approver),
      h('label', {}, 'Reason', reason),
      h('div', { class: 'actions' }, buttons)),
    message);
}


window.addEventListener('hashchange', route);
document.getElementById('refresh').addEventListener('click', route);
route();
