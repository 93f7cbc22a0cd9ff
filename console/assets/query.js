// The query: filters, free text and time range. One shape, three spellings:
// the query bar's text (level:ERROR service:api "payment failed"), the page
// URL (shareable, survives reload) and the API's query parameters, which are
// the same names as the URL's.

export const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
export const FILTER_KEYS = [
  'level',
  'min_level',
  'service',
  'host',
  'action',
  'resource_type',
  'resource_id',
  'user_id',
  'ip_address',
  'trace_id',
  'span_id',
  'user_agent',
];
const ATTRIBUTE = /^attributes\.[A-Za-z0-9_-]{1,64}$/;
export const QUICK_RANGES = {
  '5m': 300,
  '15m': 900,
  '1h': 3600,
  '6h': 6 * 3600,
  '24h': 24 * 3600,
  '7d': 7 * 86400,
  '30d': 30 * 86400,
};
export const DEFAULT_RANGE = '1h';
export const PAGE_SIZES = [50, 100, 500, 1000];
export const DEFAULT_LIMIT = 100;

export function isFilterKey(key) {
  return FILTER_KEYS.includes(key) || ATTRIBUTE.test(key);
}

// A quoted phrase, or key:value (value quoted or not), or a plain word.
const TOKEN = /"((?:[^"\\]|\\.)*)"?|([^\s":]+):("(?:[^"\\]|\\.)*"?|\S*)|(\S+)/g;
const unquote = (s) => s.replace(/\\(.)/g, '$1');

/** Query bar text -> {filters: [[key, value]], q}. Unknown `a:b` words are text. */
export function parseQueryText(text) {
  const filters = [];
  const words = [];
  for (const m of text.matchAll(TOKEN)) {
    const [whole, quoted, key, rawValue, word] = m;
    if (key !== undefined && isFilterKey(key)) {
      let value = rawValue;
      if (value.startsWith('"')) value = unquote(value.replace(/^"|"$/g, ''));
      if (value === '') continue; // `service:` being typed
      if (key === 'level' || key === 'min_level') {
        for (const v of value.split(',')) if (v) filters.push([key, v.toUpperCase()]);
      } else {
        filters.push([key, value]);
      }
    } else if (quoted !== undefined) {
      words.push(unquote(quoted));
    } else {
      words.push(word ?? whole);
    }
  }
  return { filters, q: words.join(' ').trim() };
}

function quoteIfNeeded(value) {
  return /[\s"]/.test(value) || value === '' ? `"${value.replace(/["\\]/g, '\\$&')}"` : value;
}

/** The reverse of parseQueryText. */
export function formatQueryText(filters, q) {
  const parts = filters.map(([k, v]) => `${k}:${quoteIfNeeded(v)}`);
  if (q) {
    const reparsed = parseQueryText(q);
    const plain = reparsed.filters.length === 0 && !q.includes('"');
    parts.push(plain ? q : `"${q.replace(/["\\]/g, '\\$&')}"`);
  }
  return parts.join(' ');
}

/** The state in the page URL: {filters, q, range | from+to, live, view, tenant, limit}. */
export function stateFromURL(search) {
  const params = new URLSearchParams(search);
  const state = {
    filters: [],
    q: '',
    range: DEFAULT_RANGE,
    from: null,
    to: null,
    live: params.get('live') === '1',
    view: params.get('view') === 'admin' ? 'admin' : 'search',
    tenant: params.get('tenant') || '',
    limit: DEFAULT_LIMIT,
  };
  for (const [key, value] of params) {
    if (key === 'q') state.q = value;
    else if (isFilterKey(key) && value) state.filters.push([key, value]);
  }
  const from = params.get('from');
  const to = params.get('to');
  if (from && !Number.isNaN(Date.parse(from))) {
    state.range = null;
    state.from = new Date(from).toISOString();
    state.to = to && !Number.isNaN(Date.parse(to)) ? new Date(to).toISOString() : null;
  } else if (params.get('range') in QUICK_RANGES) {
    state.range = params.get('range');
  }
  const limit = Number(params.get('limit'));
  if (PAGE_SIZES.includes(limit)) state.limit = limit;
  return state;
}

export function stateToURL(state) {
  const params = new URLSearchParams();
  if (state.tenant) params.set('tenant', state.tenant);
  if (state.view === 'admin') params.set('view', 'admin');
  for (const [k, v] of state.filters) params.append(k, v);
  if (state.q) params.set('q', state.q);
  if (state.range) {
    if (state.range !== DEFAULT_RANGE) params.set('range', state.range);
  } else if (state.from) {
    params.set('from', state.from);
    if (state.to) params.set('to', state.to);
  }
  if (state.limit !== DEFAULT_LIMIT) params.set('limit', String(state.limit));
  if (state.live) params.set('live', '1');
  const qs = params.toString();
  return qs ? `?${qs}` : location.pathname;
}

/** The time window [from, to) in epoch ms; `to` is now for a quick range. */
export function timeWindow(state, now = Date.now()) {
  if (state.range) return { from: now - QUICK_RANGES[state.range] * 1000, to: now };
  const from = Date.parse(state.from);
  const to = state.to ? Date.parse(state.to) : now;
  return { from, to };
}

/** Filter parameters of the API (search, stats, export and the stream share them). */
export function filterParams(state) {
  const pairs = state.filters.map(([k, v]) => [k, v]);
  if (state.q) pairs.push(['q', state.q]);
  return pairs;
}

/** Filters plus the time window, as API query parameters. */
export function apiParams(state, window) {
  const pairs = filterParams(state);
  pairs.push(['from', new Date(window.from).toISOString()]);
  if (!state.range && state.to) pairs.push(['to', new Date(window.to).toISOString()]);
  return pairs;
}

/** Add key:value unless it is already there (clicking a value in a row or a stat). */
export function withFilter(state, key, value) {
  const exists = state.filters.some(([k, v]) => k === key && v === value);
  if (exists) return state;
  const filters =
    key === 'level' || key === 'min_level' || key.startsWith('attributes.')
      ? [...state.filters, [key, value]]
      : [...state.filters.filter(([k]) => k !== key), [key, value]];
  return { ...state, filters };
}

// --- suggestions from recent values -----------------------------------------------

const SUGGEST_FIELDS = [
  'service',
  'host',
  'action',
  'resource_type',
  'resource_id',
  'user_id',
  'ip_address',
  'trace_id',
];
const MAX_VALUES = 50;

/** Values seen in recent results, per field, newest first. */
export class RecentValues {
  constructor() {
    this.values = new Map(); // key -> Map(value -> seen counter)
    this.tick = 0;
  }

  remember(key, value) {
    if (value === null || value === undefined || typeof value === 'object') return;
    const text = String(value);
    if (!text || text.length > 200) return;
    let seen = this.values.get(key);
    if (!seen) {
      seen = new Map();
      this.values.set(key, seen);
    }
    seen.delete(text);
    seen.set(text, ++this.tick);
    if (seen.size > MAX_VALUES) seen.delete(seen.keys().next().value);
  }

  observe(events) {
    for (const event of events.slice(0, 200)) {
      for (const field of SUGGEST_FIELDS) this.remember(field, event[field]);
      const attrs = event.attributes;
      if (attrs && typeof attrs === 'object') {
        for (const [k, v] of Object.entries(attrs).slice(0, 20)) {
          if (/^[A-Za-z0-9_-]{1,64}$/.test(k)) this.remember(`attributes.${k}`, v);
        }
      }
    }
  }

  /** Completions for the word being typed: a field name, or a value of `field:`. */
  suggest(word, max = 8) {
    const colon = word.indexOf(':');
    if (colon < 0) {
      const lower = word.toLowerCase();
      const keys = [...FILTER_KEYS, ...[...this.values.keys()].filter((k) => k.includes('.'))];
      return keys
        .filter((k) => k.startsWith(lower))
        .slice(0, max)
        .map((k) => ({ label: `${k}:`, insert: `${k}:`, field: true }));
    }
    const key = word.slice(0, colon);
    const typed = word.slice(colon + 1).replace(/^"/, '').toLowerCase();
    if (!isFilterKey(key)) return [];
    const candidates =
      key === 'level' || key === 'min_level'
        ? LEVELS
        : [...(this.values.get(key)?.entries() ?? [])].sort((a, b) => b[1] - a[1]).map(([v]) => v);
    return candidates
      .filter((v) => v.toLowerCase().includes(typed))
      .slice(0, max)
      .map((v) => ({ label: `${key}:${v}`, insert: `${key}:${quoteIfNeeded(v)} ` }));
  }
}
