// The statistics beside the results: the histogram (stacked by level) and the
// level and service bars, whose values add a filter when clicked.

import { $, fill, formatCount, h } from './dom.js';
import { INTERVALS, intervalFor } from './histogram.js';
import { LEVELS } from './query.js';

/** `onFilter(key, value)` adds a filter; `notify` reports a failure. */
export function createStats({ api, histogram, notify, onFilter }) {
  /** Two stats calls: by level with a histogram (stacked by level), and by service. */
  async function loadStats(params, win, signal) {
    const interval = intervalFor(win.to - win.from);
    const byLevel = api.get('/logs/stats', [...params, ['by', 'level'], ['interval', interval]], { signal });
    const byService = api.get('/logs/stats', [...params, ['by', 'service']], { signal });
    let levels;
    let services;
    try {
      [levels, services] = await Promise.all([byLevel, byService]);
    } catch (err) {
      if (err.name === 'AbortError') return;
      histogram.clear('Statistics are unavailable.');
      notify(err.message);
      return;
    }
    const buckets = new Map((levels.histogram || []).map((b) => [Date.parse(b.start), b.counts || {}]));
    histogram.set({ from: win.from, to: win.to, step: INTERVALS[interval], buckets });
    statBars($('#stats-level'), 'level', LEVELS.filter((l) => levels.counts[l]).map((l) => [l, levels.counts[l]]));
    statBars($('#stats-service'), 'service', Object.entries(services.counts).slice(0, 12));
  }

  function statBars(list, key, entries) {
    if (!entries.length) {
      fill(list, h('li', { class: 'muted' }, 'none'));
      return;
    }
    const max = Math.max(...entries.map(([, n]) => n));
    fill(
      list,
      ...entries.map(([value, n]) => {
        const bar = h('span', { class: `bar lvl-${key === 'level' ? value : 'any'}` });
        bar.style.width = `${Math.max(2, (n / max) * 100)}%`;
        const label =
          value === '(none)'
            ? h('span', { class: 'name muted' }, value)
            : h('button', { type: 'button', class: 'name link', title: `Add the filter ${key}:${value}` }, value);
        if (value !== '(none)') label.addEventListener('click', () => onFilter(key, value));
        return h('li', {}, label, h('span', { class: 'count' }, formatCount(n)), bar);
      }),
    );
  }

  return { load: loadStats };
}
