// The campaigns panel: progress and outcomes of each campaign as inline SVG bars.

const COLOURS = ['#1f8a4c', '#2f6fb3', '#f2a900', '#c0392b', '#8e44ad', '#7f8c8d', '#16a085'];

function bar(parts, total) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', '240');
  svg.setAttribute('height', '14');
  let x = 0;
  parts.forEach(([label, value], i) => {
    const rect = document.createElementNS(svg.namespaceURI, 'rect');
    const w = total ? (240 * value) / total : 0;
    rect.setAttribute('x', String(x));
    rect.setAttribute('width', String(w));
    rect.setAttribute('height', '14');
    rect.setAttribute('fill', COLOURS[i % COLOURS.length]);
    const title = document.createElementNS(svg.namespaceURI, 'title');
    title.textContent = `${label}: ${value}`;
    rect.append(title);
    svg.append(rect);
    x += w;
  });
  return svg;
}

export function drawCampaigns(box, campaigns) {
  const table = document.createElement('table');
  table.createTHead().insertRow().append(...['Campaign', 'Flow', 'State', 'Progress', 'Outcomes', 'Abandoned']
    .map((h) => Object.assign(document.createElement('th'), { textContent: h })));
  const body = table.createTBody();
  for (const c of campaigns) {
    const row = body.insertRow();
    row.insertCell().textContent = c.name;
    row.insertCell().textContent = c.flow;
    row.insertCell().textContent = c.state;
    const progress = row.insertCell();
    progress.append(bar([['done', c.done], ['in progress', c.in_progress]], c.total),
      ` ${c.done} / ${c.total}`);
    const outcomes = Object.entries(c.outcomes || {});
    const cell = row.insertCell();
    cell.append(bar(outcomes, outcomes.reduce((s, [, v]) => s + v, 0)));
    cell.title = outcomes.map(([k, v]) => `${k}: ${v}`).join(', ');
    row.insertCell().textContent = `${Math.round((c.abandon_ratio || 0) * 1000) / 10}%`;
  }
  box.replaceChildren(table);
}
