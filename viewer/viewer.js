// The cantbook viewer: runs, pending approvals, and one run's statechart,
// timeline and nodes, kept live while the runs move. Plain browser JavaScript,
// no dependencies, no network beyond this server. Everything shown is built
// with DOM calls (textContent), never HTML strings, so run data cannot inject
// markup.

import { drawChart } from './chart.js';

const KEY_STORAGE = 'cantbook.sessionKey';
/** How often an open page asks the server whether any event was appended. */
const POLL_MS = 1000;
/** How long it waits before asking again after a failed poll. */
const RETRY_MS = 3000;
/**
 * Every this many polls a view reads itself again even when no event says it moved: what the clock alone
 * changes (a gate past its expiry is no longer listed as waiting), and an append a poll could not see yet.
 */
const FULL_READ_EVERY = 15;
const STATUSES = ['running', 'paused', 'completed', 'failed', 'cancelled'];
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
const runHref = (runId) => `#/runs/${encodeURIComponent(runId)}`;

/** 1234 -> '1.2 s', 95000 -> '1 min 35 s': a duration as the timeline and the node panel show it. */
function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function errorBox(error) {
  const code = error instanceof ApiError ? error.code : 'E_INTERNAL';
  return h('p', { class: 'message error', role: 'alert', dataset: { code } }, `error[${code}]: ${error.message}`);
}

// 2. Live: every view polls GET /api/changes (the runs whose events were appended since the last call) and reads
// again only what moved. A view's poller stops as soon as another view starts (route() counts views).
let view = 0;

/** The store's newest globalSeq, read before a view loads so that nothing appended while it loads is missed. */
async function headSeq() {
  return (await api('/api/changes')).globalSeq;
}

/**
 * Calls `onChange(runIds)` whenever events of those runs were appended after `after`, while view `generation` is
 * shown, and `onChange(null)` ("anything may have changed") every FULL_READ_EVERY polls.
 */
function follow(generation, after, onChange) {
  const indicator = document.getElementById('live');
  const mark = (state, title) => {
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.title = title;
  };
  let cursor = after;
  let polls = 0;
  async function tick() {
    if (generation !== view) return;
    let wait = POLL_MS;
    try {
      const changes = await api(`/api/changes?after=${cursor}`);
      if (generation !== view) return;
      polls += 1;
      if (polls % FULL_READ_EVERY === 0) await onChange(null);
      else if (changes.runIds.length > 0) await onChange(changes.runIds);
      // Only once the view took the change in: a failed read is tried again from the same place.
      cursor = changes.globalSeq;
      if (changes.more) wait = 0;
      mark('on', 'live: this page follows the runs as they move');
    } catch (error) {
      wait = RETRY_MS;
      mark('off', `live updates paused: ${error.message}`);
    }
    if (generation === view) setTimeout(tick, wait);
  }
  mark('on', 'live: this page follows the runs as they move');
  setTimeout(tick, POLL_MS);
}

// 3. Routing: #/ lists runs and gates (#/?status=failed&playbook=release filters the runs); #/runs/<id> shows one
// run (#/runs/<id>?node=<nodeId> with a node's panel open).
function parseHash() {
  const hash = location.hash.startsWith('#') ? location.hash.slice(1) : '';
  const at = hash.indexOf('?');
  return at < 0 ? { path: hash, params: new URLSearchParams() } : { path: hash.slice(0, at), params: new URLSearchParams(hash.slice(at + 1)) };
}

async function route() {
  view += 1;
  const generation = view;
  document.onkeydown = null;
  document.body.classList.remove('panel-open');
  const { path, params } = parseHash();
  const match = /^\/runs\/([^/?]+)$/.exec(path);
  try {
    if (!localStorage.getItem(KEY_STORAGE)) throw new ApiError('E_UI_FORBIDDEN', 'this viewer needs its session key: open the link `cantbook ui` printed in its terminal');
    if (match) await showRun(decodeURIComponent(match[1]), params, generation);
    else await showHome(params, generation);
  } catch (error) {
    if (generation === view) app.replaceChildren(errorBox(error));
  }
}

// 4. The start page: the gates waiting for a decision, and the runs (filtered by status and playbook), kept live.
async function showHome(params, generation) {
  const filters = { status: params.get('status') ?? '', playbook: params.get('playbook') ?? '' };
  const after = await headSeq();
  const first = await api('/api/runs');
  if (generation !== view) return;
  document.getElementById('label').textContent = first.label;

  const status = h('select', { id: 'filter-status', 'aria-label': 'status' },
    h('option', { value: '' }, 'every status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, s)));
  const playbook = h('select', { id: 'filter-playbook', 'aria-label': 'playbook' });
  const onFilter = () => {
    const query = new URLSearchParams();
    if (status.value) query.set('status', status.value);
    if (playbook.value) query.set('playbook', playbook.value);
    // In the address: a reload, a bookmark or the back button keeps the filters.
    location.hash = query.toString() === '' ? '#/' : `#/?${query}`;
  };
  status.addEventListener('change', onFilter);
  playbook.addEventListener('change', onFilter);
  const filterBar = h('form', { class: 'filters', id: 'filters', onsubmit: (event) => event.preventDefault() },
    h('label', {}, 'Status ', status), h('label', {}, 'Playbook ', playbook),
    filters.status || filters.playbook ? h('a', { href: '#/', id: 'clear-filters' }, 'clear') : '');

  const gatesSection = h('section', { id: 'gates-section' });
  const runsTitle = h('h2', {});
  const runsBody = h('div', { id: 'runs-body' });
  const runsSection = h('section', { id: 'runs-section' }, h('div', { class: 'section-head' }, runsTitle, filterBar), runsBody);
  let playbooksShown = '';

  function render({ runs, approvals }) {
    gatesSection.replaceChildren(h('h2', {}, `Waiting for approval (${approvals.length})`), gatesTable(approvals));
    // The playbooks to filter by: those of the runs listed (and the one asked for, even when none is left).
    const names = [...new Set([...runs.map((run) => run.playbookName), ...(filters.playbook ? [filters.playbook] : [])])].sort();
    if (names.join('\n') !== playbooksShown && document.activeElement !== playbook) {
      playbooksShown = names.join('\n');
      playbook.replaceChildren(h('option', { value: '' }, 'every playbook'), ...names.map((name) => h('option', { value: name, selected: name === filters.playbook }, name)));
    }
    const rows = filterRuns(runs, filters);
    const matching = rows.filter((row) => row.match).length;
    const filtered = filters.status !== '' || filters.playbook !== '';
    runsTitle.textContent = filtered ? `Runs (${matching} of ${runs.length})` : `Runs (${runs.length})`;
    runsBody.replaceChildren(runs.length === 0
      ? h('p', { class: 'muted' }, 'No runs yet: start one with `cantbook run <file>`.')
      : matching === 0
        ? h('p', { class: 'muted', id: 'no-match' }, 'No run matches these filters. ', h('a', { href: '#/' }, 'Show every run.'))
        : runsTable(rows));
  }

  render(first);
  app.replaceChildren(gatesSection, runsSection);
  follow(generation, after, async () => {
    const next = await api('/api/runs');
    if (generation === view) render(next);
  });
}

function gatesTable(approvals) {
  if (approvals.length === 0) return h('p', { class: 'muted' }, 'No gate is waiting for a decision.');
  return h('table', { class: 'list', id: 'approvals' },
    h('thead', {}, h('tr', {}, ['Run', 'Gate', 'Prompt', 'Requested', 'Expires'].map((t) => h('th', {}, t)))),
    h('tbody', {}, approvals.map((gate) => h('tr', { dataset: { runId: gate.runId } },
      h('td', {}, h('a', { href: runHref(gate.runId), title: gate.runId }, shortId(gate.runId))),
      h('td', {}, gate.nodeId, gate.escalation ? h('span', { class: 'tag escalation' }, `escalation · ${gate.escalation.on}`) : ''),
      h('td', { class: 'prompt' }, gate.prompt),
      h('td', {}, time(gate.requestedAt)),
      h('td', {}, time(gate.expiresAt))))));
}

/**
 * The rows the filters keep, in tree order: each run that matches, and the runs above it in its tree (shown
 * muted, `match: false`), so a matching child run still sits under its parent.
 */
function filterRuns(runs, filters) {
  const matches = (run) => (filters.status === '' || run.status === filters.status) && (filters.playbook === '' || run.playbookName === filters.playbook);
  const byId = new Map(runs.map((run) => [run.runId, run]));
  const kept = new Set();
  for (const run of runs) {
    if (!matches(run)) continue;
    for (let at = run; at !== undefined && !kept.has(at.runId); at = at.parentRunId ? byId.get(at.parentRunId) : undefined) kept.add(at.runId);
  }
  return runs.filter((run) => kept.has(run.runId)).map((run) => ({ ...run, match: matches(run) }));
}

function runsTable(rows) {
  return h('table', { class: 'list', id: 'runs' },
    h('thead', {}, h('tr', {}, ['Run', 'Playbook', 'Status', 'Node', 'Started', 'Updated'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((run) => h('tr', {
      dataset: { runId: run.runId, depth: run.depth ?? 0, match: String(run.match) },
      class: [run.depth > 0 ? 'child-run' : '', run.match ? '' : 'context-row'].filter(Boolean).join(' ') || undefined,
      title: run.match ? undefined : 'shown for the runs under it that match the filters',
    },
      // A child run (SPEC §12) sits under its parent, indented by its depth in the tree.
      h('td', {},
        run.depth > 0 ? h('span', { class: 'tree' }, `${'   '.repeat(run.depth - 1)}↳ `) : '',
        h('a', { href: runHref(run.runId), title: run.runId }, shortId(run.runId, run.parentRunId))),
      h('td', {}, run.playbookName),
      h('td', {}, badge(run.status)),
      h('td', {}, run.currentNode ?? '–'),
      h('td', {}, time(run.startedAt)),
      h('td', {}, time(run.updatedAt))))));
}

// 5. One run: statechart + timeline + the state at the selected event + the gate form + cancel/retry + a node's
// panel, kept live: new events are appended to the timeline, and the parts that changed are drawn again.
async function showRun(runId, params, generation) {
  const path = `/api/runs/${encodeURIComponent(runId)}`;
  const after = await headSeq();
  const [detail, first] = await Promise.all([api(path), api(`${path}/live`)]);
  if (generation !== view) return;
  const { graph, playbook } = detail;
  let run = first.run;
  const steps = [];
  let selected = -1;

  const chart = drawChart(graph, detail.layout);
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const position = h('p', { class: 'position', id: 'position' });
  const context = h('pre', { class: 'context', id: 'context' });
  const stepper = h('div', { class: 'stepper' },
    h('button', { id: 'first', onclick: () => select(0), title: 'first event' }, '« First'),
    h('button', { id: 'prev', onclick: () => select(selected - 1), title: 'previous event (←)' }, '◀ Prev'),
    h('span', { id: 'counter', class: 'counter' }),
    h('button', { id: 'next', onclick: () => select(selected + 1), title: 'next event (→)' }, 'Next ▶'),
    h('button', { id: 'last', onclick: () => select(steps.length - 1), title: 'latest event' }, 'Latest »'));
  const stepItem = (step, index) => h('li', { dataset: { seq: step.seq, type: step.type }, onclick: () => select(index) },
    h('span', { class: 'seq' }, `#${step.seq}`),
    h('span', { class: `type ${step.type}` }, step.type),
    h('span', { class: 'summary' }, step.summary),
    h('span', { class: 'when' }, h('time', { datetime: step.at }, time(step.at)), tookOf(step)));

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

  /** Appends the steps not shown yet; says whether the latest one was selected before (then the selection follows). */
  function addSteps(more) {
    const followLatest = selected === steps.length - 1;
    for (const step of more) {
      if (steps.length > 0 && step.seq <= steps.at(-1).seq) continue;
      steps.push(step);
      timeline.append(stepItem(step, steps.length - 1));
    }
    return followLatest;
  }

  const title = h('h2', {});
  const ids = h('p', { class: 'muted ids' });
  const parentSlot = h('div', { class: 'slot' });
  const actionsSlot = h('div', { class: 'run-actions', id: 'run-actions' });
  const actionMessage = h('div', { id: 'action-message' });
  const gateSlot = h('div', { class: 'slot' });
  const childrenSlot = h('div', { class: 'slot' });
  const panel = nodePanel(runId, () => generation === view, (nodeId) => {
    for (const node of chart.querySelectorAll('g.node')) node.dataset.selected = String(node.dataset.node === nodeId);
    // In the address, without a reload (replaceState fires no hashchange): a reload opens the panel again.
    history.replaceState(null, '', `${location.pathname}${runHref(runId)}${nodeId === null ? '' : `?node=${encodeURIComponent(nodeId)}`}`);
  });
  // Only what changed is drawn again: a gate form keeps what the user typed while its gate still waits.
  const shown = { parent: undefined, children: undefined, gate: undefined, actions: undefined };

  function apply(live) {
    run = live.run;
    const followLatest = addSteps(live.steps);
    title.replaceChildren(playbook.name, ' ', badge(run.status));
    ids.textContent = `run ${run.runId} · playbook sha256 ${playbook.sourceHash.slice(0, 12)} · ${steps.length} events`;
    const parentKey = JSON.stringify(live.parent);
    if (parentKey !== shown.parent) {
      shown.parent = parentKey;
      parentSlot.replaceChildren(live.parent ? parentLine(live.parent) : '');
    }
    const childrenKey = JSON.stringify(live.children);
    if (childrenKey !== shown.children) {
      shown.children = childrenKey;
      childrenSlot.replaceChildren(live.children.length > 0 ? childrenSection(run.runId, live.children) : '');
    }
    const pending = live.approvals.find((gate) => gate.status === 'pending');
    const gateKey = pending?.approvalId ?? '';
    if (gateKey !== shown.gate) {
      shown.gate = gateKey;
      gateSlot.replaceChildren(pending ? gateForm(run.runId, pending) : '');
    }
    const actionsKey = JSON.stringify(live.actions);
    if (actionsKey !== shown.actions) {
      shown.actions = actionsKey;
      actionsSlot.replaceChildren(...runActions(run, live.actions, actionMessage, refresh));
    }
    // The selection follows new events only from the latest one; an earlier one stays, unscrolled, where the user left it.
    if (followLatest && live.steps.length > 0) select(steps.length - 1);
    else document.getElementById('counter').textContent = `event ${selected + 1} of ${steps.length}`;
  }

  // One read at a time; a change that arrives during a read is read right after it.
  let reading = null;
  let again = false;
  function refresh() {
    if (reading) {
      again = true;
      return reading;
    }
    reading = (async () => {
      try {
        do {
          again = false;
          const seen = steps.at(-1)?.seq ?? 0;
          const live = await api(`${path}/live?after=${seen}`);
          if (generation !== view) return;
          // A log shorter than what this page read is not the log it read: read everything again.
          if (live.version < seen) return void route();
          apply(live);
          await panel.refresh();
        } while (again && generation === view);
      } finally {
        reading = null;
      }
    })();
    return reading;
  }

  const notice = sessionStorage.getItem('cantbook.notice');
  sessionStorage.removeItem('cantbook.notice');
  app.replaceChildren(
    notice ? h('p', { class: 'message ok', id: 'notice', role: 'status' }, notice) : '',
    h('div', { class: 'run-head' },
      h('a', { href: '#/', class: 'back' }, '← all runs'),
      title,
      ids,
      parentSlot,
      playbook.description ? h('p', { class: 'muted' }, playbook.description) : '',
      actionsSlot,
      actionMessage),
    gateSlot,
    childrenSlot,
    h('div', { class: `run-grid${Number(chart.dataset.width) > 1000 ? ' wide' : ''}` },
      h('section', { class: 'chart-panel' }, h('h3', {}, 'Statechart'), h('p', { class: 'muted hint' }, 'Click a node for its attempts, inputs, output and log.'), chart, position),
      h('section', { class: 'timeline-panel' }, h('h3', {}, 'Timeline'), stepper, timeline)),
    h('section', {}, h('h3', {}, 'State at the selected event'), context),
    panel.element,
  );
  apply(first);
  // A node's panel opens on a click on its box (end states have none).
  chart.addEventListener('click', (event) => {
    const node = event.target instanceof Element ? event.target.closest('g.node[data-node]') : null;
    if (node && !node.dataset.node.startsWith('@')) void panel.open(node.dataset.node);
  });
  document.onkeydown = (event) => {
    if (event.key === 'Escape' && panel.nodeId !== null) return panel.close();
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    if (event.key === 'ArrowLeft') select(selected - 1);
    if (event.key === 'ArrowRight') select(selected + 1);
  };
  const asked = params.get('node');
  if (asked) void panel.open(asked);
  follow(generation, after, (runIds) => {
    // This run, its children (their ids extend its id) and its parent are on the page.
    const shows = (id) => id === runId || id.startsWith(`${runId}.`) || id === run.parentRunId;
    return runIds === null || runIds.some(shows) ? refresh() : undefined;
  });
}

/** "took 1.2 s" on an attempt's result, "+3 ms" since the previous event. */
function tookOf(step) {
  return [
    typeof step.attemptMs === 'number' ? h('span', { class: 'took attempt', title: "how long the attempt took, from its NodeStarted" }, `took ${duration(step.attemptMs)}`) : '',
    typeof step.sincePreviousMs === 'number' ? h('span', { class: 'took since', title: 'time since the previous event' }, `+${duration(step.sincePreviousMs)}`) : '',
  ];
}

/**
 * The operator's buttons, shown only when they apply (the server's `actions`, by the rules cancelRun and retryRun
 * apply; the library still checks): cancel a run that has not ended, retry a failed root run. Refusals show their
 * code like the gate form's.
 */
function runActions(run, actions, message, refresh) {
  const forms = [];
  async function act(name, body, buttons, pending, done) {
    buttons.forEach((button) => (button.disabled = true));
    message.replaceChildren(h('p', { class: 'message' }, pending));
    try {
      const { result } = await api(`/api/runs/${encodeURIComponent(run.runId)}/${name}`, body);
      message.replaceChildren(h('p', { class: 'message ok', id: 'action-notice', role: 'status' }, done(result)));
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
    buttons.forEach((button) => (button.disabled = false));
    await refresh();
  }
  if (actions.cancel) {
    const reason = h('input', { id: 'cancel-reason', name: 'reason', placeholder: 'why (required)', 'aria-label': 'why the run is cancelled' });
    const by = h('input', { id: 'cancel-by', name: 'by', autocomplete: 'name', placeholder: 'your name', 'aria-label': 'who cancels' });
    const button = h('button', { id: 'cancel', class: 'danger', type: 'button' }, 'Cancel run');
    button.addEventListener('click', () => act('cancel', { reason: reason.value, by: by.value }, [button], 'Cancelling…',
      (result) => `Cancelled${by.value.trim() ? ` by ${by.value.trim()}` : ''}; the run is ${result?.terminalStatus ?? 'cancelled'}.`));
    forms.push(h('form', { class: 'action-form', id: 'cancel-form', onsubmit: (event) => event.preventDefault() }, reason, by, button));
  }
  if (actions.retry) {
    const by = h('input', { id: 'retry-by', name: 'by', autocomplete: 'name', placeholder: 'your name', 'aria-label': 'who retries' });
    const reason = h('input', { id: 'retry-reason', name: 'reason', placeholder: 'why (optional)', 'aria-label': 'why the run is retried' });
    const from = run.error?.nodeId;
    const button = h('button', { id: 'retry', class: 'primary', type: 'button', title: from ? `redrive from '${from}' with fresh attempts; earlier successes are kept` : undefined }, 'Retry run');
    button.addEventListener('click', () => act('retry', { by: by.value, reason: reason.value }, [button], 'Retrying: the run is driven again from where it failed…',
      (result) => `Retried${by.value.trim() ? ` by ${by.value.trim()}` : ''}; the run is ${result?.terminalStatus ?? 'updated'}.`));
    forms.push(h('form', { class: 'action-form', id: 'retry-form', onsubmit: (event) => event.preventDefault() }, by, reason, button));
  }
  return forms;
}

/** The side panel of one node: its attempts and gates, read from `/api/runs/<id>/nodes/<nodeId>`. */
function nodePanel(runId, isCurrent, onToggle) {
  const heading = h('h3', { id: 'node-panel-title' });
  const body = h('div', { class: 'panel-body', id: 'node-panel-body' });
  const element = h('aside', { class: 'node-panel', id: 'node-panel', hidden: true, 'aria-label': 'node details' },
    h('div', { class: 'panel-head' }, heading, h('button', { id: 'node-panel-close', type: 'button', title: 'close (Esc)', onclick: () => close() }, '×')),
    body);
  let nodeId = null;
  let shownKey = '';
  async function load() {
    const id = nodeId;
    if (id === null) return;
    try {
      const detail = await api(`/api/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(id)}`);
      if (id !== nodeId || !isCurrent()) return;
      // Drawn again only when it changed: the log's scroll position stays while nothing moves.
      const key = JSON.stringify(detail);
      if (key === shownKey) return;
      shownKey = key;
      body.replaceChildren(...nodeDetailView(runId, detail));
    } catch (error) {
      if (id === nodeId) body.replaceChildren(errorBox(error));
    }
  }
  async function open(id) {
    nodeId = id;
    shownKey = '';
    element.hidden = false;
    element.dataset.node = id;
    document.body.classList.add('panel-open');
    heading.textContent = id;
    body.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    onToggle(id);
    await load();
  }
  function close() {
    nodeId = null;
    element.hidden = true;
    delete element.dataset.node;
    document.body.classList.remove('panel-open');
    onToggle(null);
  }
  return { element, open, close, refresh: load, get nodeId() { return nodeId; } };
}

const ATTEMPT_BADGE = { running: 'running', succeeded: 'completed', failed: 'failed', timed_out: 'failed', interrupted: 'failed', aborted: 'cancelled', unfinished: 'cancelled', scheduled: 'paused' };

function nodeDetailView(runId, detail) {
  const where = detail.branches.length > 0 ? ` · in branch ${detail.branches.join(' › ')}` : '';
  return [
    h('p', { class: 'muted panel-kind' }, `${detail.type} node${where}`),
    detail.description ? h('p', { class: 'panel-description' }, detail.description) : '',
    detail.gates.length > 0 ? [h('h4', {}, `Gates (${detail.gates.length})`), h('ol', { class: 'gates', id: 'node-gates' }, detail.gates.map(gateEntry))] : '',
    h('h4', {}, `Attempts (${detail.attempts.length})`),
    detail.attempts.length === 0
      ? h('p', { class: 'muted', id: 'no-attempts' }, 'No attempt yet.')
      // Newest first: the attempt that is running, or the one that ended the node.
      : h('ol', { class: 'attempts', id: 'node-attempts' }, [...detail.attempts].reverse().map((attempt) => attemptEntry(runId, attempt))),
  ].flat();
}

function field(label, ...content) {
  return h('div', { class: 'field' }, h('h5', {}, label), ...content);
}

function attemptEntry(runId, a) {
  const times = [
    ['started', a.startedAt ? `${time(a.startedAt)} (#${a.startSeq})` : 'not yet'],
    a.endedAt ? ['ended', `${time(a.endedAt)} (#${a.endSeq})`] : null,
    a.retryDueAt ? ['backoff until', time(a.retryDueAt)] : null,
    a.owner ? ['driven by', `${a.owner.worker ? `${a.owner.worker} · ` : ''}${a.owner.host} pid ${a.owner.pid}`] : null,
    a.exitCode !== undefined ? ['exit code', String(a.exitCode)] : null,
    a.retryable === false ? ['retryable', 'no (the agent said so)'] : null,
  ].filter(Boolean);
  const dispatched = a.dispatched === null ? null : a.dispatched.kind === 'agent'
    ? [h('p', { class: 'mono' }, `agent ${a.dispatched.agentId}`), h('pre', { class: 'inputs' }, JSON.stringify(a.dispatched.bindings, null, 2))]
    : [h('pre', { class: 'inputs' }, [`$ ${[a.dispatched.command, ...a.dispatched.args].map((arg) => (/^[\w./:=@%+-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ')}`,
      a.dispatched.cwd ? `cwd: ${a.dispatched.cwd}` : '', a.dispatched.env ? `env: ${JSON.stringify(a.dispatched.env)}` : ''].filter(Boolean).join('\n'))];
  return h('li', { class: 'attempt', dataset: { attempt: a.attempt, attemptStatus: a.status } },
    h('div', { class: 'attempt-head' },
      h('strong', {}, `attempt ${a.attempt}`), ' ',
      h('span', { class: `badge ${ATTEMPT_BADGE[a.status] ?? ''}` }, a.status.replace('_', ' ')),
      a.durationMs === null ? '' : h('span', { class: 'took' }, ` took ${duration(a.durationMs)}`)),
    h('dl', { class: 'times' }, times.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    dispatched ? field('Inputs as dispatched', dispatched) : '',
    a.output !== undefined ? field('Output', h('pre', { class: 'output' }, JSON.stringify(a.output, null, 2))) : '',
    a.error !== undefined ? field('Error', h('pre', { class: 'error' }, a.error)) : '',
    a.contractViolations.length > 0 ? field('Contract violations', h('ul', {}, a.contractViolations.map((v) => h('li', {}, `${v.kind} ${v.key}: ${v.message}`)))) : '',
    a.childRuns.length > 0 ? field('Child runs', h('ul', { class: 'child-runs' }, a.childRuns.map((child) => h('li', { dataset: { runId: child.runId } },
      h('a', { href: runHref(child.runId), title: child.runId }, shortId(child.runId, runId)), ' ', badge(child.status),
      child.error ? h('span', { class: 'error-text' }, ` ${child.error}`) : '')))) : '',
    field('Log', a.log === null
      ? h('p', { class: 'muted no-log' }, a.status === 'running' ? 'The log is kept once the attempt ends.' : 'No log was kept for this attempt.')
      : [a.log.droppedBytes > 0 ? h('p', { class: 'muted' }, `… the first ${a.log.droppedBytes} bytes were dropped to keep the log bounded`) : '',
        h('pre', { class: 'log' }, a.log.text === '' ? '(empty)' : a.log.text)]));
}

function gateEntry(gate) {
  const decided = gate.decidedAt ? `${gate.status} ${time(gate.decidedAt)}${gate.approver ? ` by ${gate.approver}` : ''}${gate.reason ? `: ${gate.reason}` : ''}` : gate.status;
  return h('li', { class: 'gate-entry', dataset: { approvalId: gate.approvalId, gateStatus: gate.status } },
    h('p', { class: 'prompt' }, gate.prompt),
    h('p', { class: 'muted' }, `opened ${time(gate.requestedAt)}${gate.expiresAt ? ` · expires ${time(gate.expiresAt)}` : ''}`),
    h('p', {}, decided,
      gate.escalation ? h('span', { class: 'tag escalation' }, `escalation · ${gate.escalation.on}`) : '',
      gate.auto ? h('span', { class: 'tag' }, `auto-passed (rule ${gate.rule ?? 'none'})`) : '',
      gate.resumed ? ' · resumed' : ''));
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
