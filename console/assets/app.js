// The logserver console: sign in, search, histogram, stats, live tail, export,
// tenant and key admin. Plain ES modules, no build step, no dependencies; it
// talks only to the public API (/api/v1) and the stream.

import { AdminView } from './admin.js';
import { $, fill, formatCount, formatTime, h, show, toLocalInput } from './dom.js';
import { Api } from './api.js';
import { Histogram, INTERVALS, intervalFor } from './histogram.js';
import {
  DEFAULT_RANGE,
  LEVELS,
  RecentValues,
  apiParams,
  filterParams,
  formatQueryText,
  parseQueryText,
  stateFromURL,
  stateToURL,
  timeWindow,
  withFilter,
} from './query.js';
import { ResultsTable } from './results.js';
import { Session } from './session.js';
import { LiveTail } from './tail.js';

const LIVE_CAP = 2000; // rows kept in live mode (and events buffered while paused)
const LIVE_HISTORY = 100; // tail=N when live mode starts
const LIVE_FRAME_ROWS = 200; // rows added per animation frame in live mode

const session = new Session();
const api = new Api(session);
const recent = new RecentValues();
let state = stateFromURL(location.search);
let tenants = [];
let cursor = null;
let searchAbort = null;
let tail = null;
const live = { pending: [], buffer: [], paused: false, dropped: 0, received: 0, scheduled: false };

const table = new ResultsTable($('#results'), { onFilter: (k, v) => navigate(withFilter(state, k, v)) });
const histogram = new Histogram($('#histogram'), {
  onZoom: (from, to) =>
    navigate({ ...state, range: null, from: new Date(from).toISOString(), to: new Date(to).toISOString(), live: false }),
});
const admin = new AdminView($('#admin-view'), { api, session, notify, confirm: confirmDialog });

// --- notices ----------------------------------------------------------------------

/** A message for the person: errors stay until dismissed, the rest fade. */
function notify(message, kind = 'error') {
  const close = h('button', { type: 'button', class: 'link close', 'aria-label': 'Dismiss' }, '×');
  const note = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('span', {}, message), close);
  close.addEventListener('click', () => note.remove());
  const box = $('#notices');
  box.append(note);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => note.remove(), 6000);
}

function clearNotices() {
  $('#notices').replaceChildren();
}

function confirmDialog(text, okLabel = 'OK') {
  const dialog = $('#confirm-dialog');
  fill($('#confirm-text'), text);
  fill($('#confirm-ok'), okLabel);
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

// --- sign in / out ----------------------------------------------------------------

const VIEWS = ['#signin-view', '#search-view', '#admin-view', '#noread-view', '#notenant-view'];
function showView(id) {
  for (const v of VIEWS) show($(v), v === id);
}

function showSignIn(message = '') {
  stopLive();
  show($('#topbar'), false);
  showView('#signin-view');
  const error = $('#signin-error');
  fill(error, message);
  show(error, Boolean(message));
  $('#client-id').focus();
}

$('#signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const button = $('#signin-button');
  button.disabled = true;
  show($('#signin-error'), false);
  try {
    await session.signIn($('#client-id').value.trim(), $('#client-secret').value);
    await session.loadMe(api);
    $('#client-secret').value = '';
    await enter();
  } catch (err) {
    const error = $('#signin-error');
    fill(error, err.message);
    show(error, true);
  } finally {
    button.disabled = false;
  }
});

$('#sign-out').addEventListener('click', () => session.signOut());
session.addEventListener('signedout', (e) => {
  clearNotices();
  showSignIn(e.detail.message);
});
session.addEventListener('expiring', () =>
  notify('Your session expires in about a minute (the page was reloaded, so it cannot be renewed): sign in again.', 'info'),
);

async function enter() {
  const me = session.me;
  show($('#topbar'), true);
  fill($('#whoami'), `${me.sub} · ${me.role}${me.platform_admin ? ' (platform)' : me.tenant ? ` · ${me.tenant}` : ''}`);
  show($('#nav-admin'), session.can('manage'));
  show($('#export-controls'), session.can('export'));
  show($('#tenant-picker'), session.platformAdmin);
  if (session.platformAdmin) await loadTenants();
  route();
}

async function loadTenants() {
  try {
    tenants = (await api.get('/tenants', { limit: 1000 })).data;
  } catch (err) {
    tenants = [];
    notify(err.message);
  }
  const select = $('#tenant-select');
  fill(
    select,
    h('option', { value: '' }, tenants.length ? 'choose…' : 'no tenants'),
    ...tenants.map((t) => h('option', { value: t.key }, t.status === 'active' ? t.key : `${t.key} (${t.status})`)),
  );
  select.value = tenants.some((t) => t.key === state.tenant) ? state.tenant : '';
}

$('#tenant-select').addEventListener('change', (e) => navigate({ ...state, tenant: e.target.value }));
$('#admin-view').addEventListener('tenants-changed', () => session.platformAdmin && loadTenants());

// --- navigation: the URL holds the query ------------------------------------------

function navigate(next, { replace = false } = {}) {
  state = next;
  const url = stateToURL(state);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

window.addEventListener('popstate', () => {
  state = stateFromURL(location.search);
  if (session.signedIn) route();
});

for (const [id, view] of [['#nav-search', 'search'], ['#nav-admin', 'admin'], ['#brand', 'search']]) {
  $(id).addEventListener('click', (e) => {
    e.preventDefault();
    navigate({ ...state, view, live: view === 'search' && state.live });
  });
}

function route() {
  if (!session.signedIn) return;
  session.tenant = session.platformAdmin ? state.tenant : '';
  if (session.platformAdmin) $('#tenant-select').value = state.tenant;
  $('#nav-search').toggleAttribute('aria-current', state.view !== 'admin');
  $('#nav-admin').toggleAttribute('aria-current', state.view === 'admin');
  if (state.view === 'admin' && session.can('manage')) {
    stopLive();
    showView('#admin-view');
    admin.load();
    return;
  }
  if (!session.can('read')) {
    stopLive();
    fill($('#noread-role'), session.role);
    showView('#noread-view');
    return;
  }
  if (session.platformAdmin && !session.tenant) {
    stopLive();
    show($('#notenant-none'), tenants.length === 0);
    showView('#notenant-view');
    return;
  }
  showView('#search-view');
  formFromState();
  if (state.live) startLive();
  else {
    stopLive();
    search();
  }
}

// --- the search form ---------------------------------------------------------------

function formFromState() {
  $('#query').value = formatQueryText(state.filters, state.q);
  const custom = !state.range;
  $('#range').value = custom ? 'custom' : state.range;
  show($('#absolute'), custom);
  if (custom) {
    $('#from').value = toLocalInput(new Date(state.from));
    $('#to').value = state.to ? toLocalInput(new Date(state.to)) : '';
  }
  const liveButton = $('#live-toggle');
  liveButton.setAttribute('aria-pressed', String(state.live));
  liveButton.classList.toggle('on', state.live);
  show($('#pause'), state.live);
  show($('#histogram'), !state.live);
  show($('#stats'), !state.live);
  show($('#live-status'), state.live);
}

function stateFromForm() {
  const { filters, q } = parseQueryText($('#query').value);
  const next = { ...state, filters, q };
  const range = $('#range').value;
  if (range === 'custom') {
    const from = $('#from').value;
    const to = $('#to').value;
    if (!from) {
      notify('Absolute range: give a start time ("from"); leave "to" empty for now.');
      return null;
    }
    next.range = null;
    next.from = new Date(from).toISOString();
    next.to = to ? new Date(to).toISOString() : null;
    if (next.to && next.to <= next.from) {
      notify('Absolute range: "to" must be after "from".');
      return null;
    }
  } else {
    next.range = range || DEFAULT_RANGE;
    next.from = null;
    next.to = null;
  }
  return next;
}

$('#search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  closeSuggestions();
  const next = stateFromForm();
  if (next) navigate(next);
});

$('#range').addEventListener('change', (e) => {
  const custom = e.target.value === 'custom';
  show($('#absolute'), custom);
  if (custom) {
    const { from, to } = timeWindow(state);
    $('#from').value = toLocalInput(new Date(from));
    $('#to').value = toLocalInput(new Date(to));
    $('#from').focus();
  } else {
    const next = stateFromForm();
    if (next) navigate(next);
  }
});

$('#live-toggle').addEventListener('click', () => {
  const next = stateFromForm() || state;
  navigate({ ...next, live: !state.live });
});

document.addEventListener('keydown', (e) => {
  const typing = e.target.closest?.('input, select, textarea');
  if (e.key === '/' && !typing && !$('#search-view').hidden) {
    e.preventDefault();
    $('#query').focus();
  }
});

// --- suggestions -------------------------------------------------------------------

const query = $('#query');
const suggestions = $('#suggestions');
let active = -1;

function currentWord() {
  const upto = query.value.slice(0, query.selectionStart ?? query.value.length);
  const m = upto.match(/(\S+?:"[^"]*|\S*)$/);
  return { word: m ? m[0] : '', start: upto.length - (m ? m[0].length : 0) };
}

function updateSuggestions() {
  const { word } = currentWord();
  const items = recent.suggest(word);
  active = -1;
  if (!word || !items.length) return closeSuggestions();
  fill(
    suggestions,
    ...items.map((item, i) => {
      const li = h('li', { role: 'option', id: `suggestion-${i}`, 'aria-selected': 'false' }, item.label);
      li.addEventListener('mousedown', (e) => {
        e.preventDefault();
        accept(item);
      });
      li._item = item;
      return li;
    }),
  );
  show(suggestions, true);
  query.setAttribute('aria-expanded', 'true');
}

function closeSuggestions() {
  show(suggestions, false);
  query.setAttribute('aria-expanded', 'false');
  query.removeAttribute('aria-activedescendant');
  active = -1;
}

function accept(item) {
  const { start } = currentWord();
  const end = query.selectionStart ?? query.value.length;
  query.value = query.value.slice(0, start) + item.insert + query.value.slice(end);
  const caret = start + item.insert.length;
  query.setSelectionRange(caret, caret);
  query.focus();
  if (item.field) updateSuggestions();
  else closeSuggestions();
}

function highlight(index) {
  const items = [...suggestions.children];
  if (!items.length) return;
  active = (index + items.length) % items.length;
  items.forEach((li, i) => li.setAttribute('aria-selected', String(i === active)));
  query.setAttribute('aria-activedescendant', items[active].id);
}

query.addEventListener('input', updateSuggestions);
query.addEventListener('focus', updateSuggestions);
query.addEventListener('blur', () => setTimeout(closeSuggestions, 100));
query.addEventListener('keydown', (e) => {
  const open = !suggestions.hidden;
  if (e.key === 'ArrowDown' && open) {
    e.preventDefault();
    highlight(active + 1);
  } else if (e.key === 'ArrowUp' && open) {
    e.preventDefault();
    highlight(active - 1);
  } else if ((e.key === 'Enter' || e.key === 'Tab') && open && active >= 0) {
    e.preventDefault();
    accept(suggestions.children[active]._item);
  } else if (e.key === 'Escape' && open) {
    e.preventDefault();
    closeSuggestions();
  }
});

// --- search ------------------------------------------------------------------------

function describeWindow() {
  if (state.range) return $('#range').selectedOptions[0]?.textContent.toLowerCase() ?? state.range;
  return `${formatTime(state.from).slice(0, 16)} → ${state.to ? formatTime(state.to).slice(0, 16) : 'now'}`;
}

async function search() {
  searchAbort?.abort();
  searchAbort = new AbortController();
  const signal = searchAbort.signal;
  cursor = null;
  table.clear();
  show($('#empty'), false);
  show($('#load-more'), false);
  fill($('#summary'), 'Searching…');
  const win = timeWindow(state);
  const params = apiParams(state, win);
  const stats = loadStats(params, win, signal);
  await loadPage(params, signal, true);
  await stats;
}

async function loadPage(params, signal, first = false) {
  const pageParams = [...params, ['limit', String(state.limit)]];
  if (cursor) pageParams.push(['cursor', cursor]);
  let answer;
  try {
    answer = await api.get('/logs', pageParams, { signal });
  } catch (err) {
    if (err.name === 'AbortError') return;
    fill($('#summary'), 'The search failed.');
    notify(err.message);
    return;
  }
  if (signal?.aborted) return;
  const arrived = performance.now();
  const events = answer.data;
  const done = await table.append(events);
  if (done) {
    performance.measure('results-render', { start: arrived, detail: { rows: events.length } });
  }
  recent.observe(events);
  cursor = answer.meta.next_cursor;
  show($('#load-more'), Boolean(answer.meta.has_more && cursor));
  const shown = table.rows();
  fill(
    $('#summary'),
    shown
      ? `${formatCount(shown)} event${shown === 1 ? '' : 's'}, newest first · ${describeWindow()}${answer.meta.has_more ? ' · more available' : ''}`
      : `No events · ${describeWindow()}`,
  );
  if (first && !events.length) await emptyState(signal);
}

$('#load-more').addEventListener('click', async () => {
  const button = $('#load-more');
  button.disabled = true;
  await loadPage(apiParams(state, timeWindow(state)), searchAbort?.signal);
  button.disabled = false;
});

/** Nothing matched: say why and what to do; a tenant without any event gets the curl. */
async function emptyState(signal) {
  const box = $('#empty');
  const filtered = state.filters.length || state.q;
  let anyEvent = true;
  try {
    anyEvent = (await api.get('/logs', { limit: 1 }, { signal })).data.length > 0;
  } catch {
    anyEvent = true;
  }
  if (anyEvent) {
    fill(
      box,
      h('p', {}, filtered ? 'No events match these filters in this time range.' : 'No events in this time range.'),
      h('p', { class: 'muted' }, filtered ? 'Remove a filter or widen the time range (or drag less narrowly on the histogram).' : 'Choose a wider time range, or turn on Live to watch new events arrive.'),
    );
  } else {
    const curl =
      `curl -s ${location.origin}/api/v1/logs \\\n` +
      `  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\\n` +
      `  -d '{"level":"info","service":"demo","message":"hello from curl"}'`;
    fill(
      box,
      h('p', {}, h('strong', {}, `Tenant ${session.activeTenant || ''} has no events yet.`)),
      h('p', {}, 'Send a first one with a writer (or admin) key of this tenant: get a token with POST /api/v1/auth/token, then'),
      h('pre', { class: 'code' }, curl),
      h('p', { class: 'muted' }, session.can('manage') ? 'Create a writer key under Admin → API keys.' : 'Ask an admin of this tenant for a writer key.'),
    );
  }
  show(box, true);
}

// --- stats and histogram -----------------------------------------------------------

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
      if (value !== '(none)') label.addEventListener('click', () => navigate(withFilter(state, key, value)));
      return h('li', {}, label, h('span', { class: 'count' }, formatCount(n)), bar);
    }),
  );
}

// --- live tail ---------------------------------------------------------------------

function startLive() {
  stopLive();
  searchAbort?.abort(); // a search still in flight must not fill the live table
  table.clear();
  show($('#empty'), false);
  show($('#load-more'), false);
  Object.assign(live, { pending: [], buffer: [], paused: false, dropped: 0, received: 0 });
  updatePause();
  fill($('#summary'), `Live: newest first, the last ${LIVE_HISTORY} matching events, then new ones as they arrive (time range ignored).`);
  tail = new LiveTail({
    params: filterParams(state),
    tenant: session.platformAdmin ? session.tenant : '',
    history: LIVE_HISTORY,
    session,
    onEvents: liveEvents,
    onStatus: liveStatus,
  });
  tail.start();
}

function stopLive() {
  if (tail) {
    tail.stop();
    tail = null;
  }
}

function liveStatus({ state: s, text, notice }) {
  const el = $('#live-status');
  el.dataset.state = s;
  live.statusText = text;
  renderLiveStatus();
  if (notice) notify(notice, 'info');
  if (s === 'error') notify(text);
}

function renderLiveStatus() {
  const parts = [live.statusText || ''];
  parts.push(`${formatCount(live.received)} received`);
  if (live.paused) parts.push(`paused: ${formatCount(live.buffer.length)} new waiting`);
  if (live.dropped) parts.push(`${formatCount(live.dropped)} older dropped (${formatCount(LIVE_CAP)} kept)`);
  fill($('#live-status'), parts.join(' · '));
}

function liveEvents(events) {
  recent.observe(events);
  live.received += events.length;
  const target = live.paused ? live.buffer : live.pending;
  target.push(...events);
  if (target.length > LIVE_CAP) {
    const extra = target.length - LIVE_CAP;
    target.splice(0, extra);
    live.dropped += extra;
  }
  if (live.paused) renderLiveStatus();
  else scheduleFlush();
}

function scheduleFlush() {
  if (live.scheduled) return;
  live.scheduled = true;
  requestAnimationFrame(flushLive);
}

/**
 * One frame's worth of rows: at most LIVE_FRAME_ROWS, oldest pending first, each
 * chunk put on top of the previous one (so newest stays on top), then the rows
 * beyond the cap removed at the bottom. Whatever is left waits for the next frame,
 * so a burst never blocks the page for long.
 */
function flushLive() {
  live.scheduled = false;
  if (live.pending.length > LIVE_CAP) {
    live.dropped += live.pending.length - LIVE_CAP; // would be trimmed right away
    live.pending.splice(0, live.pending.length - LIVE_CAP);
  }
  if (!live.pending.length) return;
  table.prepend(live.pending.splice(0, LIVE_FRAME_ROWS).reverse());
  live.dropped += table.trim(LIVE_CAP);
  renderLiveStatus();
  if (live.pending.length) scheduleFlush();
}

function updatePause() {
  const button = $('#pause');
  button.setAttribute('aria-pressed', String(live.paused));
  fill(button, live.paused ? 'Resume' : 'Pause');
}

$('#pause').addEventListener('click', () => {
  live.paused = !live.paused;
  if (!live.paused) {
    live.pending.push(...live.buffer);
    live.buffer = [];
    scheduleFlush();
  }
  updatePause();
  renderLiveStatus();
});

// --- export ------------------------------------------------------------------------

/** The token goes in the Authorization header, never in a URL: fetch, then save a Blob. */
$('#export').addEventListener('click', async () => {
  const button = $('#export');
  const format = $('#export-format').value;
  button.disabled = true;
  fill(button, 'Exporting…');
  try {
    const params = [...(state.live ? filterParams(state) : apiParams(state, timeWindow(state))), ['format', format]];
    const resp = await api.request('GET', '/logs/export', { params, raw: true });
    const blob = await resp.blob();
    const disposition = resp.headers.get('content-disposition') || '';
    const name = disposition.match(/filename="?([^";]+)"?/)?.[1] || `logs.${format}`;
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    notify(`Exported ${name} (${formatCount(Math.ceil(blob.size / 1024))} KB).`, 'ok');
  } catch (err) {
    notify(err.message);
  } finally {
    button.disabled = false;
    fill(button, 'Export');
  }
});

// --- start -------------------------------------------------------------------------

async function boot() {
  if (session.restore()) {
    try {
      await session.loadMe(api);
      await enter();
      return;
    } catch (err) {
      session.clear();
      showSignIn(err.status === 401 ? 'Your session ended. Sign in again.' : err.message);
      return;
    }
  }
  showSignIn();
}

boot();
