// Events over time, stacked by level, drawn as SVG (no chart library). Hover
// shows a bucket's counts; dragging across the chart zooms into that span.

import { LEVELS } from './query.js';
import { formatCount, formatTime, h, svg } from './dom.js';

const HEIGHT = 120;
const AXIS = 18; // px below the bars for time labels

/** Seconds per bucket the API offers, and the one that gives at most ~120 bars. */
export const INTERVALS = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '6h': 21600, '1d': 86400 };
export function intervalFor(spanMs) {
  for (const [name, seconds] of Object.entries(INTERVALS)) {
    if (spanMs / 1000 / seconds <= 120) return name;
  }
  return '1d';
}

export class Histogram {
  constructor(container, { onZoom }) {
    this.container = container;
    this.onZoom = onZoom;
    this.data = null;
    this.tooltip = h('div', { class: 'tooltip', role: 'tooltip', hidden: true });
    this.chart = h('div', { class: 'chart' });
    container.replaceChildren(this.chart, this.tooltip);
    new ResizeObserver(() => this.data && this.draw()).observe(container);
  }

  /** buckets: Map(start ms -> {LEVEL: count}); from/to in ms; step in seconds. */
  set(data) {
    this.data = data;
    this.draw();
  }

  clear(message = '') {
    this.data = null;
    this.chart.replaceChildren(h('p', { class: 'muted' }, message));
  }

  draw() {
    const { step, buckets } = this.data;
    // Whole buckets: the axis runs from the start of the first to the end of the last.
    const ms = step * 1000;
    const from = Math.floor(this.data.from / ms) * ms;
    const to = Math.ceil(this.data.to / ms) * ms;
    this.domain = { from, to };
    const width = Math.max(200, this.chart.clientWidth || 800);
    const span = Math.max(1, to - from);
    const x = (t) => ((t - from) / span) * width;
    const barWidth = Math.max(1, ((step * 1000) / span) * width - 1);
    let max = 0;
    for (const counts of buckets.values()) {
      max = Math.max(max, Object.values(counts).reduce((a, b) => a + b, 0));
    }
    const plot = HEIGHT - AXIS;
    const scale = max ? (plot - 12) / max : 0;
    const root = svg('svg', {
      class: 'hist',
      width,
      height: HEIGHT,
      viewBox: `0 0 ${width} ${HEIGHT}`,
      role: 'img',
      'aria-label': `Events over time by level, ${formatCount(max)} at most per bar`,
    });
    root.append(svg('line', { class: 'axis', x1: 0, x2: width, y1: plot + 0.5, y2: plot + 0.5 }));
    for (const [start, counts] of buckets) {
      if (start + step * 1000 <= from || start >= to) continue;
      let y = plot;
      for (const level of LEVELS) {
        const n = counts[level] || 0;
        if (!n) continue;
        const hgt = Math.max(1, n * scale);
        y -= hgt;
        root.append(
          svg('rect', { class: `bar lvl-${level}`, x: x(start), y, width: barWidth, height: hgt }),
        );
      }
    }
    root.append(svg('text', { class: 'label', x: 4, y: 10 }, `${formatCount(max)} max`));
    const ticks = Math.max(2, Math.floor(width / 180));
    for (let i = 0; i <= ticks; i++) {
      const t = from + (span * i) / ticks;
      const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
      root.append(
        svg('text', { class: 'label', x: (width * i) / ticks, y: HEIGHT - 4, 'text-anchor': anchor },
          formatTime(new Date(t).toISOString()).slice(5, 16)),
      );
    }
    this.selection = svg('rect', { class: 'selection', x: 0, y: 0, width: 0, height: plot, visibility: 'hidden' });
    root.append(this.selection);
    this.wire(root, { width, span, step });
    this.chart.replaceChildren(root);
  }

  wire(root, { width, span, step }) {
    const { buckets } = this.data;
    const { from } = this.domain;
    const timeAt = (px) => from + (Math.min(Math.max(px, 0), width) / width) * span;
    const pos = (e) => e.clientX - root.getBoundingClientRect().left;
    let dragFrom = null;
    root.addEventListener('pointerdown', (e) => {
      dragFrom = pos(e);
      root.setPointerCapture(e.pointerId);
    });
    root.addEventListener('pointermove', (e) => {
      const px = pos(e);
      if (dragFrom !== null) {
        const left = Math.min(dragFrom, px);
        this.selection.setAttribute('x', left);
        this.selection.setAttribute('width', Math.abs(px - dragFrom));
        this.selection.setAttribute('visibility', 'visible');
      }
      const t = timeAt(px);
      const start = t - (t % (step * 1000));
      this.tip(px, start, buckets.get(start), step);
    });
    root.addEventListener('pointerleave', () => {
      this.tooltip.hidden = true;
    });
    const finish = (e) => {
      if (dragFrom === null) return;
      const px = pos(e);
      const [a, b] = [dragFrom, px].sort((p, q) => p - q);
      dragFrom = null;
      this.selection.setAttribute('visibility', 'hidden');
      if (b - a >= 5) this.onZoom(Math.floor(timeAt(a)), Math.ceil(timeAt(b)));
    };
    root.addEventListener('pointerup', finish);
    root.addEventListener('pointercancel', () => {
      dragFrom = null;
      this.selection.setAttribute('visibility', 'hidden');
    });
  }

  tip(px, start, counts, step) {
    const lines = [h('strong', {}, `${formatTime(new Date(start).toISOString()).slice(0, 16)} (+${step >= 3600 ? `${step / 3600}h` : `${step / 60}m`})`)];
    let total = 0;
    for (const level of [...LEVELS].reverse()) {
      const n = counts?.[level] || 0;
      total += n;
      if (n) lines.push(h('div', { class: `tip-row lvl-${level}` }, `${level} ${formatCount(n)}`));
    }
    if (!total) lines.push(h('div', { class: 'muted' }, 'no events'));
    this.tooltip.replaceChildren(...lines);
    this.tooltip.hidden = false;
    const w = this.container.clientWidth;
    this.tooltip.style.left = `${Math.min(Math.max(px + 12, 0), Math.max(0, w - 180))}px`;
  }
}
