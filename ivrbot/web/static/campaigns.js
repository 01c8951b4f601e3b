// The campaigns panel: progress and outcomes of each campaign as inline SVG bars, one colour
// per outcome (the same in every row), and a legend naming them.

const PROGRESS = { done: '#2f6fb3', 'in progress': '#a9c6e8' };
const OUTCOMES = {
  completed: '#1f8a4c', answered: '#1f8a4c', machine: '#2f6fb3', voicemail: '#2f6fb3',
  'no-answer': '#f2a900', 'not-answered': '#f2a900', busy: '#e67e22', rejected: '#c0392b',
  failed: '#7d1d12', error: '#7d1d12', 'opted-out': '#8e44ad', abandoned: '#e84393',
  interrupted: '#7f8c8d', dnc: '#34495e',
};
const MORE = ['#16a085', '#d35400', '#2c3e50', '#6c5ce7', '#b7950b', '#a93226'];
const others = new Map(); // outcomes without a colour of their own: one each, for the page

export function outcomeColour(outcome) {
  if (OUTCOMES[outcome]) return OUTCOMES[outcome];
  if (!others.has(outcome)) others.set(outcome, MORE[others.size % MORE.length]);
  return others.get(outcome);
}

function bar(parts, total, colour) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', '240');
  svg.setAttribute('height', '14');
  let x = 0;
  for (const [label, value] of parts) {
    const rect = document.createElementNS(svg.namespaceURI, 'rect');
    const w = total ? (240 * value) / total : 0;
    rect.setAttribute('x', String(x));
    rect.setAttribute('width', String(w));
    rect.setAttribute('height', '14');
    rect.setAttribute('fill', colour(label));
    rect.dataset.part = label;
    const title = document.createElementNS(svg.namespaceURI, 'title');
    title.textContent = `${label}: ${value}`;
    rect.append(title);
    svg.append(rect);
    x += w;
  }
  return svg;
}

function legend(names, colour) {
  const list = document.createElement('ul');
  list.className = 'legend';
  for (const name of names) {
    const li = document.createElement('li');
    li.dataset.part = name;
    const swatch = document.createElement('i');
    swatch.style.background = colour(name);
    li.append(swatch, name);
    list.append(li);
  }
  return list;
}

export function drawCampaigns(box, campaigns) {
  const table = document.createElement('table');
  table.createTHead().insertRow().append(...['Campaign', 'Flow', 'State', 'Progress', 'Outcomes', 'Abandoned']
    .map((h) => Object.assign(document.createElement('th'), { textContent: h })));
  const body = table.createTBody();
  const seen = new Set();
  for (const c of campaigns) {
    const row = body.insertRow();
    row.insertCell().textContent = c.name;
    row.insertCell().textContent = c.flow;
    row.insertCell().textContent = c.state;
    const progress = row.insertCell();
    progress.append(bar([['done', c.done], ['in progress', c.in_progress]], c.total, (p) => PROGRESS[p]),
      ` ${c.done} / ${c.total}`);
    const outcomes = Object.entries(c.outcomes || {});
    outcomes.forEach(([k]) => seen.add(k));
    const cell = row.insertCell();
    cell.append(bar(outcomes, outcomes.reduce((s, [, v]) => s + v, 0), outcomeColour));
    cell.title = outcomes.map(([k, v]) => `${k}: ${v}`).join(', ');
    row.insertCell().textContent = `${Math.round((c.abandon_ratio || 0) * 1000) / 10}%`;
  }
  const key = document.createElement('div');
  key.className = 'bars-legend';
  const progressKey = legend(Object.keys(PROGRESS), (p) => PROGRESS[p]);
  progressKey.id = 'progress-legend';
  const outcomeKey = legend([...seen].sort(), outcomeColour);
  outcomeKey.id = 'outcome-legend';
  if (!seen.size) outcomeKey.append(Object.assign(document.createElement('li'), { textContent: 'none yet' }));
  key.append(Object.assign(document.createElement('span'), { textContent: 'Progress:' }), progressKey,
    Object.assign(document.createElement('span'), { textContent: 'Outcomes:' }), outcomeKey);
  box.replaceChildren(table, key);
}
