// The cantbook viewer: runs, pending approvals, and one run's statechart and
// timeline. Plain browser JavaScript, no dependencies, no network beyond this
// server. Everything shown is built with DOM calls (textContent), never HTML
// strings, so run data cannot inject markup.

const KEY_STORAGE = 'cantbook.sessionKey';
const SVG_NS = 'http://www.w3.org/2000/svg';
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

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) element.append(child instanceof Node ? child : String(child));
  return element;
}

const badge = (status) => h('span', { class: `badge ${status}`, dataset: { status } }, status);
const shortId = (id) => (id.length > 13 ? `${id.slice(0, 8)}…` : id);
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
          h('td', {}, gate.nodeId),
          h('td', { class: 'prompt' }, gate.prompt),
          h('td', {}, time(gate.requestedAt)),
          h('td', {}, time(gate.expiresAt))))));
  const list = runs.length === 0
    ? h('p', { class: 'muted' }, 'No runs yet: start one with `cantbook run <file>`.')
    : h('table', { class: 'list', id: 'runs' },
        h('thead', {}, h('tr', {}, ['Run', 'Playbook', 'Status', 'Node', 'Started', 'Updated'].map((t) => h('th', {}, t)))),
        h('tbody', {}, runs.map((run) => h('tr', { dataset: { runId: run.runId } },
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.runId)}`, title: run.runId }, shortId(run.runId))),
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
  const { run, graph, approvals, playbook } = detail;
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
    const visited = new Set(steps.slice(0, index + 1).filter((s) => s.type === 'NodeStarted' || s.type === 'RunPaused').map((s) => s.data.nodeId));
    for (const node of chart.querySelectorAll('g.node')) {
      const id = node.dataset.node;
      const active = id === step.node;
      node.dataset.active = String(active);
      node.dataset.phase = active ? step.phase ?? '' : '';
      node.classList.toggle('visited', visited.has(id));
    }
    document.getElementById('counter').textContent = `event ${index + 1} of ${steps.length}`;
    position.replaceChildren(
      h('strong', {}, step.node === null ? '(no node)' : step.node === '@completed' ? 'completed' : step.node),
      step.phase ? ` · ${step.phase}` : '',
      step.attempt > 0 && step.node !== '@completed' ? ` · attempt ${step.attempt}` : '',
      ' · run ', badge(step.status),
      step.error ? h('span', { class: 'error-text' }, ` ${step.error.cause}: ${step.error.error}`) : '');
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
      playbook.description ? h('p', { class: 'muted' }, playbook.description) : ''),
    pending ? gateForm(run.runId, pending) : '',
    h('div', { class: 'run-grid' },
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
  return h('section', { class: 'gate', id: 'gate', dataset: { approvalId: gate.approvalId } },
    h('h3', {}, `Gate '${gate.nodeId}' is waiting for a decision`),
    h('p', { class: 'prompt' }, gate.prompt),
    h('p', { class: 'muted' }, `requested ${time(gate.requestedAt)}${gate.expiresAt ? ` · expires ${time(gate.expiresAt)}` : ''}`),
    h('form', { class: 'gate-form', onsubmit: (event) => event.preventDefault() },
      h('label', {}, 'Resume token', token),
      h('label', {}, 'Approver', approver),
      h('label', {}, 'Reason', reason),
      h('div', { class: 'actions' }, buttons)),
    message);
}

// 4. The statechart: layered top-to-bottom (longest path from the entry), drawn as SVG.
const BOX = { width: 200, height: 58, gapX: 40, gapY: 62, margin: 28, side: 130 };

function layout(graph) {
  const next = graph.edges.filter((edge) => edge.kind === 'next');
  const layer = new Map(graph.nodes.map((node) => [node.id, 0]));
  const incoming = new Map(graph.nodes.map((node) => [node.id, 0]));
  for (const edge of next) incoming.set(edge.to, (incoming.get(edge.to) ?? 0) + 1);
  const queue = graph.nodes.filter((node) => incoming.get(node.id) === 0).map((node) => node.id);
  while (queue.length > 0) {
    const id = queue.shift();
    for (const edge of next.filter((e) => e.from === id)) {
      layer.set(edge.to, Math.max(layer.get(edge.to) ?? 0, (layer.get(id) ?? 0) + 1));
      incoming.set(edge.to, incoming.get(edge.to) - 1);
      if (incoming.get(edge.to) === 0) queue.push(edge.to);
    }
  }
  const layers = [];
  for (const node of graph.nodes) (layers[layer.get(node.id)] ??= []).push(node);
  const widest = Math.max(...layers.map((row) => row?.length ?? 0));
  // Retry loops are drawn left of a box, escalations right of it: keep room on both sides.
  const width = 2 * BOX.side + widest * BOX.width + (widest - 1) * BOX.gapX;
  const place = new Map();
  layers.forEach((row, depth) => {
    const rowWidth = row.length * BOX.width + (row.length - 1) * BOX.gapX;
    row.forEach((node, i) => {
      const x = (width - rowWidth) / 2 + i * (BOX.width + BOX.gapX);
      place.set(node.id, { x, y: BOX.margin + depth * (BOX.height + BOX.gapY) });
    });
  });
  return { place, width, height: BOX.margin * 2 + layers.length * BOX.height + (layers.length - 1) * BOX.gapY };
}

function drawChart(graph) {
  const { place, width, height } = layout(graph);
  const root = svg('svg', { class: 'chart', id: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `statechart of ${graph.name}` });
  root.append(svg('defs', {},
    svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
  const edges = svg('g', { class: 'edges' });
  for (const edge of graph.edges) {
    const a = place.get(edge.from);
    const b = place.get(edge.to);
    if (!a || !b) continue;
    let d;
    let labelAt;
    let anchor = 'start';
    if (edge.kind === 'retry') {
      const x1 = a.x;
      const y1 = a.y + 16;
      const y2 = a.y + BOX.height - 16;
      d = `M${x1},${y1} C${x1 - 46},${y1 - 10} ${x1 - 46},${y2 + 10} ${x1},${y2}`;
      labelAt = { x: x1 - 40, y: a.y + BOX.height / 2 + 4 };
      anchor = 'end';
    } else if (edge.kind === 'escalate') {
      const x1 = a.x + BOX.width;
      const y1 = a.y + BOX.height / 2;
      const x2 = b.x + BOX.width;
      const y2 = b.y + BOX.height / 2;
      const bulge = 60 + Math.abs(y1 - y2) * 0.15;
      d = `M${x1},${y1} C${x1 + bulge},${y1} ${x2 + bulge},${y2} ${x2},${y2}`;
      labelAt = { x: Math.max(x1, x2) + bulge * 0.75, y: (y1 + y2) / 2 };
    } else {
      const x1 = a.x + BOX.width / 2;
      const y1 = a.y + BOX.height;
      const x2 = b.x + BOX.width / 2;
      const y2 = b.y;
      const mid = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
      labelAt = { x: (x1 + x2) / 2 + 6, y: mid };
    }
    const group = svg('g', { class: `edge ${edge.kind}`, dataset: { from: edge.from, to: edge.to } }, svg('path', { d, 'marker-end': 'url(#arrow)' }));
    if (edge.label) group.append(svg('text', { x: labelAt.x, y: labelAt.y, class: 'edge-label', 'text-anchor': anchor }, edge.label));
    edges.append(group);
  }
  root.append(edges);
  for (const node of graph.nodes) {
    const { x, y } = place.get(node.id);
    const final = node.type === 'final';
    const group = svg('g', { class: `node ${node.type}`, dataset: { node: node.id, active: 'false' }, transform: `translate(${x},${y})` });
    group.append(svg('title', {}, node.description ?? node.detail));
    group.append(svg('rect', { width: BOX.width, height: BOX.height, rx: final ? BOX.height / 2 : 8 }));
    group.append(svg('text', { x: BOX.width / 2, y: final ? BOX.height / 2 + 5 : 24, class: 'node-id' }, final ? node.detail : node.id));
    if (!final) group.append(svg('text', { x: BOX.width / 2, y: 44, class: 'node-detail' }, node.detail.length > 30 ? `${node.detail.slice(0, 29)}…` : node.detail));
    root.append(group);
  }
  return root;
}

window.addEventListener('hashchange', route);
document.getElementById('refresh').addEventListener('click', route);
route();
