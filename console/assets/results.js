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
  /** onFilter(key, value) is called when a value is clicked. */
  constructor(table, { onFilter }) {
    this.table = table;
    this.tbody = table.tBodies[0];
    this.onFilter = onFilter;
    this.events = new WeakMap(); // row -> event
    this.generation = 0;
    this.tbody.addEventListener('click', (e) => this.clicked(e));
    this.tbody.addEventListener('keydown', (e) => this.keyed(e));
  }

  clear() {
    this.generation++;
    this.tbody.replaceChildren();
  }

  row(event) {
    const level = String(event.level ?? '');
    const tr = h(
      'tr',
      { class: `row lvl-${level.replace(/[^A-Z]/g, '')}`, tabindex: '0', 'aria-expanded': 'false' },
      h('td', { class: 'time', title: String(event.timestamp ?? '') }, formatTime(event.timestamp)),
      h('td', { class: 'level' }, h('span', { class: 'val badge', dataset: { key: 'level' } }, level)),
      h(
        'td',
        { class: 'service' },
        event.service ? h('span', { class: 'val', dataset: { key: 'service' } }, event.service) : '',
      ),
      h('td', { class: 'msg' }, summary(event)),
    );
    this.events.set(tr, event);
    return tr;
  }

  /** Append events (a page of results) at the bottom, BATCH rows per frame. */
  append(events) {
    return this.render(events, (frag) => this.tbody.append(frag));
  }

  /** Put events (newest first) on top, BATCH rows per frame (live tail). */
  prepend(events) {
    return this.render(events, (frag) => this.tbody.prepend(frag));
  }

  render(events, put) {
    const generation = this.generation;
    let i = 0;
    return new Promise((resolve) => {
      const step = () => {
        if (generation !== this.generation) return resolve(false);
        const frag = document.createDocumentFragment();
        const end = Math.min(i + BATCH, events.length);
        for (; i < end; i++) frag.append(this.row(events[i]));
        put(frag);
        if (i < events.length) requestAnimationFrame(step);
        else resolve(true);
      };
      step();
    });
  }

  /** Keep at most `cap` rows (live tail): drop the oldest, at the bottom. */
  trim(cap) {
    const rows = this.tbody.rows;
    let summaries = 0;
    let cut = -1;
    for (let i = 0; i < rows.length; i++) {
      if (rows[i].classList.contains('row') && ++summaries > cap) {
        cut = i;
        break;
      }
    }
    if (cut < 0) return 0;
    let removed = 0;
    while (rows.length > cut) {
      if (this.tbody.lastElementChild.classList.contains('row')) removed++;
      this.tbody.lastElementChild.remove();
    }
    return removed;
  }

  rows() {
    return this.tbody.querySelectorAll('tr.row').length;
  }

  clicked(e) {
    const val = e.target.closest('.val');
    if (val && this.tbody.contains(val) && val.dataset.key) {
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
      let next = e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
      while (next && !next.classList.contains('row')) {
        next = e.key === 'ArrowDown' ? next.nextElementSibling : next.previousElementSibling;
      }
      next?.focus();
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
      { class: 'detail' },
      h('td', { colspan: '4' }, fields, h('pre', { class: 'json' }, json), h('div', { class: 'actions' }, copy)),
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
