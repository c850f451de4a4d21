// Small SVG charts (bars, and a line with dots) drawn with createElementNS and
// text nodes: no library, no HTML, and they scale with their container.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * A chart of points [{label, value}] (value null: no data). kind "bar" or
 * "line"; `fixedMax` pins the axis (5 for stars, 1 for shares).
 * @returns {SVGSVGElement}
 */
export function chart({ title, points, kind = 'bar', unit = '', fixedMax, format = (v) => String(v) }) {
  const W = 640, H = 220, L = 48, R = 12, T = 12, B = 40;
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  // Counts get whole-number ticks (a quarter of a multiple of 4).
  const integer = values.every((v) => Number.isInteger(v));
  const top = niceMax(Math.max(0, ...values));
  const max = fixedMax || (integer ? Math.max(4, Math.ceil(top / 4) * 4) : top);
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: `chart chart-${kind}`, role: 'img',
    'aria-label': `${title}: ${points.length} points${values.length ? `, highest ${format(Math.max(...values))}${unit}` : ', no data'}`,
    'data-points': points.length, 'data-values': values.length,
  });
  svg.append(s('title', {}, title));
  const x = (i) => L + ((W - L - R) * (i + 0.5)) / Math.max(1, points.length);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  // grid and axis labels
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' },
      `${format(Math.round(v * 100) / 100)}${unit}`));
  }
  const every = Math.max(1, Math.ceil(points.length / 8));
  points.forEach((p, i) => {
    if (i % every === 0) {
      svg.append(s('text', { x: x(i), y: H - B + 16, class: 'axis', 'text-anchor': 'middle' }, p.label));
    }
  });
  const bw = Math.max(2, ((W - L - R) / Math.max(1, points.length)) * 0.7);
  if (kind === 'bar') {
    points.forEach((p, i) => {
      if (!p.value) return; // nothing to draw for 0 (and no data)
      const r = s('rect', {
        x: x(i) - bw / 2, y: y(p.value), width: bw, height: Math.max(0, y(0) - y(p.value)),
        class: 'bar', 'data-value': p.value,
      });
      r.append(s('title', {}, `${p.label}: ${format(p.value)}${unit}`));
      svg.append(r);
    });
  } else {
    let d = '';
    points.forEach((p, i) => {
      if (p.value === null || p.value === undefined) return;
      d += `${d ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
    });
    if (d) svg.append(s('path', { d, class: 'line' }));
    points.forEach((p, i) => {
      if (p.value === null || p.value === undefined) return;
      const c = s('circle', { cx: x(i), cy: y(p.value), r: 3.5, class: 'dot', 'data-value': p.value });
      c.append(s('title', {}, `${p.label}: ${format(p.value)}${unit}`));
      svg.append(c);
    });
  }
  if (!values.length) {
    svg.append(s('text', { x: W / 2, y: H / 2, class: 'empty', 'text-anchor': 'middle' }, 'No data in this range'));
  }
  return svg;
}
