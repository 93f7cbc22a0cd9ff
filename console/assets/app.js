// The logserver console: sign in, search, histogram, stats, live tail, export,
// tenant and key admin. Plain ES modules, no build step, no dependencies; it
// talks only to the public API (/api/v1) and the stream.

import { AdminView } from './admin.js';
import { $, fill, formatCount, formatTime, h, show, toLocalInput } from './dom.js';
import { Api } from './api.js';
import { attachExport } from './exporter.js';
import { Histogram } from './histogram.js';
import {
  DEFAULT_RANGE,
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
import { createLiveView } from './live.js';
import { clearNotices, confirmDialog, notify } from './notices.js';
import { ResultsTable } from './results.js';
import { Session } from './session.js';
import { createStats } from './stats.js';
import { attachSuggestions } from './suggestions.js';


const session = new Session();
const api = new Api(session);
const recent = new RecentValues();
let state = stateFromURL(location.search);
let tenants = [];
let cursor = null;
let searchAbort = null;
const live = { pending: [], buffer: [], paused: false, dropped: 0, received: 0, scheduled: false };

const table = new ResultsTable($('#results'), { onFilter: (k, v) => navigate(withFilter(state, k, v)) });
const histogram = new Histogram($('#histogram'), {
  onZoom: (from, to) =>
    navigate({ ...state, range: null, from: new Date(from).toISOString(), to: new Date(to).toISOString(), live: false }),
});
const admin = new AdminView($('#admin-view'), { api, session, notify, confirm: confirmDialog });

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
  suggestions.close();
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

const suggestions = attachSuggestions($('#query'), $('#suggestions'), recent);

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

// --- stats, live tail, export ----------------------------------------------------

const stats = createStats({ api, histogram, notify, onFilter: (k, v) => navigate(withFilter(state, k, v)) });
const loadStats = stats.load;
const liveView = createLiveView({ table, session, recent, notify });

function startLive() {
  stopLive();
  searchAbort?.abort(); // a search still in flight must not fill the live table
  liveView.start(filterParams(state), session.platformAdmin ? session.tenant : '');
}

function stopLive() {
  liveView.stop();
}

attachExport($('#export'), $('#export-format'), {
  api,
  notify,
  params: () => (state.live ? filterParams(state) : apiParams(state, timeWindow(state))),
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
