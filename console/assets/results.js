// The results table: one row per event, newest first, rendered in batches so
// that a page of 1,000 rows or a busy live tail never blocks the page. A row
// expands to the event's fields (each value a button that adds it as a
// filter) and the whole event as formatted JSON. Every value is put in with
// textContent: log content is attacker-controlled.

import { formatTime, h } from './dom.js';
import { isFilterKey } from './query.js';

const BATCH = 250; // rows per animation frame

function summary(event) {
  if (event.message) return event.message;
  const target = [event.resource_type, event.resource_id].filter(Boolean).join('/');
  return [event.action, target].filter(Boolean).join(' ');
}

function scalar(value) {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

export class ResultsTable {
  /**
   * Rows live in chunks: one <tbody> per batch, each with `content-visibility: auto`,
   * so the browser skips layout and paint of the chunks off screen (a live tail keeps
   * 2,000 rows and adds to them many times a second).
   * onFilter(key, value) is called when a value is clicked.
   */
  constructor(table, { onFilter }) {
    this.table = table;
    this.onFilter = onFilter;
    this.events = new WeakMap(); // row -> event
    this.generation = 0;
    this.total = 0;
    table.addEventListener('click', (e) => this.clicked(e));
    table.addEventListener('keydown', (e) => this.keyed(e));
  }

  chunks() {
    return this.table.tBodies;
  }

  chunk() {
    return h('tbody', { class: 'chunk', role: 'rowgroup' });
  }

  clear() {
    this.generation++;
    for (const body of [...this.chunks()]) body.remove();
    this.total = 0;
  }

  row(event) {
    const level = String(event.level ?? '');
    const tr = h(
      'tr',
      {
        class: `row lvl-${level.replace(/[^A-Z]/g, '')}`,
        role: 'row',
        tabindex: '0',
        'aria-expanded': 'false',
      },
      h('td', { class: 'time', role: 'cell', title: String(event.timestamp ?? '') }, formatTime(event.timestamp)),
      h('td', { class: 'level', role: 'cell' }, h('span', { class: 'val badge', dataset: { key: 'level' } }, level)),
      h(
        'td',
        { class: 'service', role: 'cell' },
        event.service ? h('span', { class: 'val', dataset: { key: 'service' } }, event.service) : '',
      ),
      h('td', { class: 'msg', role: 'cell' }, summary(event)),
    );
    this.events.set(tr, event);
    return tr;
  }

  /** Append events (a page of results) at the bottom, one chunk of BATCH rows per frame. */
  append(events) {
    const generation = this.generation;
    let i = 0;
    return new Promise((resolve) => {
      const step = () => {
        if (generation !== this.generation) return resolve(false);
        const body = this.chunk();
        const end = Math.min(i + BATCH, events.length);
        for (; i < end; i++) body.append(this.row(events[i]));
        this.table.append(body);
        this.total += body.rows.length;
        if (i < events.length) requestAnimationFrame(step);
        else resolve(true);
      };
      step();
    });
  }

  /** Put events (newest first) on top, now (live tail: the caller paces it per frame). */
  prepend(events) {
    const frag = document.createDocumentFragment();
    for (const event of events) frag.append(this.row(event));
    let top = this.chunks()[0];
    if (!top || top.rows.length + events.length > BATCH) {
      top = this.chunk();
      this.table.tHead.after(top);
    }
    top.prepend(frag);
    this.total += events.length;
  }

  /** Keep at most `cap` rows (live tail): drop the oldest, at the bottom. */
  trim(cap) {
    let removed = 0;
    while (this.total > cap) {
      const body = this.chunks()[this.chunks().length - 1];
      const last = body.lastElementChild;
      if (!last) {
        body.remove();
        continue;
      }
      if (last.classList.contains('row')) {
        this.total--;
        removed++;
      }
      last.remove();
      if (!body.firstElementChild) body.remove();
    }
    return removed;
  }

  rows() {
    return this.total;
  }

  clicked(e) {
    const val = e.target.closest('.val');
    if (val && this.table.contains(val) && val.dataset.key) {
      e.preventDefault();
      this.onFilter(val.dataset.key, val.dataset.value ?? val.textContent);
      return;
    }
    if (e.target.closest('button, a, .detail')) return;
    const tr = e.target.closest('tr.row');
    if (tr) this.toggle(tr);
  }

  keyed(e) {
    const tr = e.target.closest('tr.row');
    if (!tr || e.target !== tr) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.toggle(tr);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const all = [...this.table.querySelectorAll('tr.row')];
      all[all.indexOf(tr) + (e.key === 'ArrowDown' ? 1 : -1)]?.focus();
    }
  }

  toggle(tr) {
    const open = tr.getAttribute('aria-expanded') === 'true';
    if (open) {
      tr.nextElementSibling?.classList.contains('detail') && tr.nextElementSibling.remove();
      tr.setAttribute('aria-expanded', 'false');
      return;
    }
    tr.after(this.detail(this.events.get(tr)));
    tr.setAttribute('aria-expanded', 'true');
  }

  detail(event) {
    const fields = h('dl', { class: 'fields' });
    const add = (key, value) => {
      const filterable = isFilterKey(key) && scalar(value) && value !== null;
      const text = typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
      fields.append(
        h('dt', {}, key),
        h(
          'dd',
          {},
          filterable
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'val',
                  dataset: { key, value: String(value) },
                  title: `Add the filter ${key}:${value}`,
                },
                text,
              )
            : text,
        ),
      );
    };
    for (const [key, value] of Object.entries(event)) {
      if (key === 'attributes' && value && typeof value === 'object' && !Array.isArray(value)) {
        for (const [k, v] of Object.entries(value)) add(`attributes.${k}`, v);
      } else if (value !== null && value !== undefined) {
        add(key, value);
      }
    }
    const json = JSON.stringify(event, null, 2);
    const copy = h('button', { type: 'button', class: 'small' }, 'Copy JSON');
    copy.addEventListener('click', () => copyText(json, copy));
    return h(
      'tr',
      { class: 'detail', role: 'row' },
      h('td', { colspan: '4', role: 'cell' }, fields, h('pre', { class: 'json' }, json), h('div', { class: 'actions' }, copy)),
    );
  }
}

/** Copy to the clipboard; the button says whether it worked. */
export async function copyText(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed: select the text and copy it';
  }
  setTimeout(() => {
    button.textContent = label;
  }, 2000);
}
