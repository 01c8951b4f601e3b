// A flow drawn as a graph: dagre (vendored, the global `dagre`) lays the steps out so that
// edges go around boxes. Each step's box (id `step-<name>`) is filled with its kind's colour
// (the step class's `colour`, from the API) and shows its name, kind, prompt (shortened) and
// options; the picture is zoomed to fit the panel's width (top to bottom or left to right,
// whichever shows it larger); highlight() marks the steps live calls are on.

const SVG = 'http://www.w3.org/2000/svg';
const FONT = 'system-ui, -apple-system, "Segoe UI", sans-serif';
const BOX_W = 210; // a box's width in the picture's own units (px at zoom 1), at least
const BOX_MIN = 170; // crowded flows: narrower boxes rather than smaller text
const BOX_MAX = 320; // boxes widen up to this when the panel has room (fewer lines)
const PAD = 8;
const LINE = 15; // a line of text in a box
const TITLE = 19; // the name and kind line
const LABEL_PX = 12; // edge labels
const MAX_ZOOM = 1.25; // a small flow is not blown up past this
const PLAIN = new Set(['next', 'goto']); // solid arrows; every other way is dashed
let measurer = null;

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function textWidth(text, font) {
  measurer = measurer || document.createElement('canvas').getContext('2d');
  measurer.font = font;
  return measurer.measureText(text).width;
}

// `text` in lines no wider than `width`, at most `most` of them (the last one ends in … when
// the text goes on).
function wrap(text, width, font, most) {
  const lines = [];
  let line = '';
  const words = text.split(/\s+/).filter(Boolean);
  for (let i = 0; i < words.length; i++) {
    const next = line ? `${line} ${words[i]}` : words[i];
    if (textWidth(next, font) <= width || !line) { line = next; continue; }
    lines.push(line);
    line = words[i];
    if (lines.length === most) { line = ''; lines[most - 1] = clip(`${lines[most - 1]} …`, width, font); break; }
  }
  if (line) lines.push(clip(line, width, font));
  return lines;
}

// Items (a menu's options) side by side, in lines no wider than `width`, at most `most`.
function pack(items, width, font, most) {
  const lines = [];
  for (const item of items) {
    const last = lines.length ? `${lines[lines.length - 1]} · ${item}` : null;
    if (last !== null && textWidth(last, font) <= width) lines[lines.length - 1] = last;
    else if (lines.length < most) lines.push(clip(item, width, font));
    else { lines[most - 1] = clip(`${lines[most - 1]} …`, width, font); break; }
  }
  return lines;
}

function clip(text, width, font) {
  if (textWidth(text, font) <= width) return text;
  while (text.length > 1 && textWidth(`${text}…`, font) > width) text = text.slice(0, -1);
  return `${text.trimEnd()}…`;
}

const FONTS = {
  name: `600 13px ${FONT}`, kind: `11px ${FONT}`, prompt: `italic 12px ${FONT}`,
  option: `600 12px ${FONT}`, detail: `12px ${FONT}`, label: `${LABEL_PX}px ${FONT}`,
};

// The lines of a step's box: [{text, font, cls}], below its name and kind.
function boxLines(n, boxW) {
  const inner = boxW - 2 * PAD;
  const lines = [];
  if (n.prompt) {
    for (const t of wrap(`“${n.prompt}”`, inner, FONTS.prompt, 3)) lines.push({ text: t, font: 'prompt' });
  }
  const options = (n.options || []).map((o) => `${o.key} → ${o.to}`);
  for (const t of pack(options, inner, FONTS.option, 3)) lines.push({ text: t, font: 'option' });
  if (n.detail) for (const t of wrap(n.detail, inner, FONTS.detail, 2)) lines.push({ text: t, font: 'detail' });
  return lines;
}

function layout(graph, rankdir, ranker = 'network-simplex', boxW = BOX_W, ranksep = 46) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir, ranker, nodesep: 26, ranksep, edgesep: 14, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) {
    const lines = boxLines(n, boxW);
    g.setNode(n.id, { ...n, lines, width: boxW, height: 2 * PAD + TITLE + LINE * lines.length });
  }
  graph.edges.forEach((e, i) => {
    if (g.hasNode(e.from) && g.hasNode(e.to)) {
      // next / goto: a plain arrow (as `flows graph` draws it); other ways carry a label
      const label = PLAIN.has(e.label) ? '' : e.label;
      const size = label ? { width: textWidth(label, FONTS.label) + 8, height: LABEL_PX + 6 } : { width: 0, height: 0 };
      g.setEdge(e.from, e.to, { label, kind: e.label, ...size, labelpos: 'c' }, `e${i}`);
    }
  });
  dagre.layout(g);
  return g;
}

// The tallest the picture may be: a little over a screenful (legible text matters more).
function highest() {
  return Math.max(480, window.innerHeight * 1.2);
}

// How much the picture of `g` is zoomed to fit `avail` px wide (and a screenful high).
function zoomFor(g, avail) {
  const { width, height } = g.graph();
  return Math.min(MAX_ZOOM, avail / width, highest() / height);
}

function drawEdges(g, svg) {
  for (const e of g.edges()) {
    const edge = g.edge(e);
    const dashed = !PLAIN.has(edge.kind);
    const group = el('g', { class: dashed ? 'edge dashed' : 'edge', 'data-from': e.v, 'data-to': e.w }, svg);
    const d = edge.points.map((p, i) => `${i ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    el('path', { d, 'marker-end': 'url(#arrow)' }, group);
    if (edge.label) {
      const t = el('text', { x: edge.x, y: edge.y + LABEL_PX / 3, 'text-anchor': 'middle', class: 'label' }, group);
      t.textContent = edge.label;
    }
  }
}

function drawNodes(g, svg) {
  for (const id of g.nodes()) {
    const n = g.node(id);
    const left = n.x - n.width / 2;
    const top = n.y - n.height / 2;
    // a step's box is `step-NAME`; an end that is no step (the bot gives up) is `give-up`
    const classes = ['node', n.start ? 'start' : '', n.end ? 'end' : ''].filter(Boolean).join(' ');
    const group = el('g', { class: classes, id: n.end ? 'give-up' : `step-${id}`, 'data-kind': n.kind }, svg);
    el('rect', { x: left, y: top, width: n.width, height: n.height, rx: 6, fill: n.colour || '#ffffff' }, group);
    const name = el('text', { x: left + PAD, y: top + PAD + 12, class: 'name' }, group);
    const kindText = n.end ? '' : n.kind; // an end's name is its kind
    name.textContent = clip(n.label || id, n.width - 2 * PAD - textWidth(kindText, FONTS.kind) - 8, FONTS.name);
    if (kindText) {
      const kind = el('text', { x: left + n.width - PAD, y: top + PAD + 12, 'text-anchor': 'end', class: 'kind' }, group);
      kind.textContent = kindText;
    }
    n.lines.forEach((line, i) => {
      const t = el('text', { x: left + PAD, y: top + PAD + TITLE + LINE * i + 11, class: line.font }, group);
      t.textContent = line.text;
    });
  }
}

// Whether the segment a-b passes through the rectangle [x0, y0, x1, y1] (Liang-Barsky).
function cuts(a, b, [x0, y0, x1, y1]) {
  let t0 = 0;
  let t1 = 1;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  for (const [p, q] of [[-dx, a.x - x0], [dx, x1 - a.x], [-dy, a.y - y0], [dy, y1 - a.y]]) {
    if (p === 0) { if (q < 0) return false; continue; }
    const t = q / p;
    if (p < 0) t0 = Math.max(t0, t); else t1 = Math.min(t1, t);
    if (t0 > t1) return false;
  }
  return true;
}

// How many (arrow, box) pairs cross in layout `g`: an arrow drawn through a box it does not
// start or end at.
function crossings(g) {
  let found = 0;
  for (const e of g.edges()) {
    const points = g.edge(e).points;
    for (const id of g.nodes()) {
      if (id === e.v || id === e.w) continue;
      const n = g.node(id);
      const rect = [n.x - n.width / 2 + 2, n.y - n.height / 2 + 2, n.x + n.width / 2 - 2, n.y + n.height / 2 - 2];
      if (points.some((p, i) => i > 0 && cuts(points[i - 1], p, rect))) found += 1;
    }
  }
  return found;
}

// The flow laid out every way it may be (top to bottom or left to right, dagre's two
// rankers, boxes of the usual width or narrower for crowded flows): the one whose arrows
// cross fewest boxes, then the one shown largest in `avail` px.
function bestLayout(graph, avail) {
  let best = null;
  for (const ranker of ['network-simplex', 'longest-path']) {
    for (const rankdir of ['TB', 'LR']) {
      for (const g of [layout(graph, rankdir, ranker), layout(graph, rankdir, ranker, BOX_MIN, rankdir === 'TB' ? 30 : 24)]) {
        const tried = { g, crossings: crossings(g), zoom: zoomFor(g, avail) };
        if (!best || tried.crossings < best.crossings
            || (tried.crossings === best.crossings && tried.zoom > best.zoom * 1.03)) best = tried;
      }
    }
  }
  return best;
}

// Draw `graph` ({nodes: [{id, kind, colour, prompt, detail, options, start}], edges: [{from,
// to, label}]}) into `box`, zoomed to fit its width.
export function drawFlow(box, graph) {
  const avail = Math.max(200, box.clientWidth);
  const best = bestLayout(graph, avail);
  let g = best.g;
  // room to spare across: wider boxes (their prompts take fewer lines)
  const { rankdir, ranker, width: across } = g.graph();
  if (rankdir === 'TB' && across < avail) {
    const now = g.node(g.nodes()[0]).width;
    const columns = Math.max(1, Math.round(across / (now + 26)));
    for (const share of [0.95, 0.6, 0.3]) {
      const boxW = Math.min(BOX_MAX, now + Math.floor((share * (avail - across)) / columns));
      const wider = layout(graph, 'TB', ranker, boxW, g.graph().ranksep);
      if (wider.graph().width <= avail && crossings(wider) <= best.crossings
          && zoomFor(wider, avail) >= best.zoom * 0.97) { g = wider; break; }
    }
  }
  const { width, height } = g.graph();
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `flow ${graph.flow}`,
    preserveAspectRatio: 'xMidYMin meet' });
  svg.dataset.width = width;
  svg.dataset.height = height;
  svg.dataset.rankdir = g.graph().rankdir;
  svg.dataset.crossings = crossings(g);
  const defs = el('defs', {}, svg);
  const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
  el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#5b6573' }, marker);
  drawEdges(g, svg);
  drawNodes(g, svg);
  box.replaceChildren(svg);
  fit(box);
}

// Size the picture to the panel: its full width, the flow zoomed to fit (on resize too).
export function fit(box) {
  const svg = box.querySelector('svg');
  if (!svg) return;
  const width = Number(svg.dataset.width);
  const height = Number(svg.dataset.height);
  const avail = box.clientWidth;
  const zoom = Math.min(MAX_ZOOM, avail / width, highest() / height);
  svg.setAttribute('width', String(avail));
  svg.setAttribute('height', String(Math.ceil(height * zoom)));
  svg.dataset.zoom = zoom.toFixed(3);
}

// The legend: one swatch per kind of step in the graph (its colour), the start step, the
// kinds of arrow, and the live call's ring.
export function drawLegend(list, graph) {
  const kinds = new Map();
  for (const n of graph.nodes) if (!kinds.has(n.kind)) kinds.set(n.kind, n.colour || '#ffffff');
  const item = (swatchClass, text, colour = '') => {
    const li = document.createElement('li');
    const swatch = document.createElement('i');
    swatch.className = swatchClass;
    if (colour) swatch.style.background = colour;
    li.append(swatch, text);
    return li;
  };
  list.replaceChildren(...[...kinds].map(([kind, colour]) => {
    const li = item('kind', kind, colour);
    li.dataset.kind = kind;
    return li;
  }));
  list.append(
    item('start', 'start step'),
    item('solid', 'next / goto'),
    item('dashed', 'other ways (labelled)'),
    item('current', 'a live call is here'),
  );
}

// Mark the steps live calls are on (a set of step names).
export function highlight(box, steps) {
  for (const node of box.querySelectorAll('g.node')) {
    node.classList.toggle('current', steps.has(node.id.slice('step-'.length)));
  }
}
