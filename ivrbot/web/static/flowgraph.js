// A flow drawn as a graph: dagre (vendored, the global `dagre`) lays the steps out so that
// edges go around boxes; each step's box has the id `step-<name>`; highlight() marks the
// step a live call is on.

const KINDS = {
  Say: '#e3f0fb', Ask: '#e6f5ea', Menu: '#d9f0e0', Record: '#fbe9e3', Transfer: '#f2e6fa',
  Move: '#f2e6fa', Conference: '#f2e6fa', Hangup: '#eceff3', Goto: '#fdf4d8', Set: '#fdf4d8',
  Play: '#e3f0fb', Python: '#fff8e6',
};
const OTHER = '#ffffff';
const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

export function kindColour(kind) {
  return KINDS[kind] || OTHER;
}

// Draw `graph` ({nodes: [{id, kind, label}], edges: [{from, to, label}]}) into `box`.
export function drawFlow(box, graph) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 28, ranksep: 36, edgesep: 12, marginx: 8, marginy: 8 });
  for (const n of graph.nodes) {
    g.setNode(n.id, { label: n.label, kind: n.kind, width: Math.max(90, 8 * n.label.length + 24), height: 40 });
  }
  graph.edges.forEach((e, i) => {
    if (g.hasNode(e.from) && g.hasNode(e.to)) {
      g.setEdge(e.from, e.to, { label: e.label, width: 6 * e.label.length, height: 12, labelpos: 'c' }, `e${i}`);
    }
  });
  dagre.layout(g);
  const { width, height } = g.graph();
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `flow ${graph.flow}` });
  const defs = el('defs', {}, svg);
  const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#8893a0' }, marker);
  for (const e of g.edges()) {
    const edge = g.edge(e);
    const group = el('g', { class: 'edge', 'data-from': e.v, 'data-to': e.w }, svg);
    const d = edge.points.map((p, i) => `${i ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    el('path', { d, 'marker-end': 'url(#arrow)' }, group);
    if (edge.label) {
      const t = el('text', { x: edge.x, y: edge.y + 4, 'text-anchor': 'middle' }, group);
      t.textContent = edge.label;
    }
  }
  for (const id of g.nodes()) {
    const n = g.node(id);
    const group = el('g', { class: 'node', id: `step-${id}`, 'data-kind': n.kind }, svg);
    el('rect', { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height,
      fill: kindColour(n.kind) }, group);
    const t = el('text', { x: n.x, y: n.y - 2, 'text-anchor': 'middle' }, group);
    t.textContent = id;
    const k = el('text', { x: n.x, y: n.y + 13, 'text-anchor': 'middle', fill: '#6b7480', 'font-size': 10 }, group);
    k.textContent = n.kind;
  }
  box.replaceChildren(svg);
}

// The legend: one swatch per kind of step in the graph, and the live call's step.
export function drawLegend(list, graph) {
  const kinds = [...new Set(graph.nodes.map((n) => n.kind))];
  list.replaceChildren(...kinds.map((kind) => {
    const li = document.createElement('li');
    const swatch = document.createElement('i');
    swatch.style.background = kindColour(kind);
    li.append(swatch, kind);
    return li;
  }));
  const live = document.createElement('li');
  const ring = document.createElement('i');
  ring.className = 'current';
  live.append(ring, 'a live call is here');
  list.append(live);
}

// Mark the steps live calls are on (a set of step names).
export function highlight(box, steps) {
  for (const node of box.querySelectorAll('g.node')) {
    node.classList.toggle('current', steps.has(node.id.slice('step-'.length)));
  }
}
