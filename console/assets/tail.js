// Live tail over WebSocket (WS /api/v1/logs/stream). The token rides in the
// subprotocol (`bearer, <token>`), so it is never part of a URL; a platform
// admin names the tenant with ?tenant=. It reconnects by itself after a close
// that says "try again" (1012, 1013, 4408 slow consumer, a lost connection),
// waiting 0.5 s doubling up to 10 s, and asks for recent history again
// (tail=N), skipping events it already delivered.

const FATAL = {
  4403: 'This key may not tail this tenant.',
  4404: 'Unknown or disabled tenant.',
  4422: 'The stream refused the filters.',
};
const SEEN_CAP = 5000;

export function backoff(attempt, random = Math.random) {
  const full = Math.min(10, 0.5 * 2 ** attempt);
  return (full / 2 + (random() * full) / 2) * 1000;
}

export class LiveTail {
  /**
   * params: filter pairs; history: tail=N on first connect;
   * onEvents(events, replay) gets them oldest first; onStatus({state, text, notice}).
   */
  constructor({ params, tenant, history = 100, session, onEvents, onStatus }) {
    this.params = params;
    this.tenant = tenant;
    this.history = history;
    this.session = session;
    this.onEvents = onEvents;
    this.onStatus = onStatus;
    this.ws = null;
    this.stopped = false;
    this.attempt = 0;
    this.renewedFor4401 = false;
    this.seen = new Set();
    this.lastError = '';
    this.retryTimer = null;
  }

  url() {
    const qs = new URLSearchParams(this.params);
    if (this.tenant) qs.set('tenant', this.tenant);
    qs.set('tail', String(this.history));
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api/v1/logs/stream?${qs}`;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000);
      this.ws = null;
    }
    this.onStatus({ state: 'stopped', text: 'Live tail off' });
  }

  connect() {
    this.lastError = '';
    this.onStatus({ state: 'connecting', text: 'Connecting…' });
    let ws;
    try {
      ws = new WebSocket(this.url(), ['bearer', this.session.token]);
    } catch (err) {
      this.onStatus({ state: 'error', text: `Cannot open the stream: ${err.message}` });
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.onStatus({ state: 'live', text: 'Live' });
    ws.onmessage = (msg) => this.message(msg.data);
    ws.onclose = (e) => this.closed(e.code, e.reason);
  }

  message(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === 'events' && Array.isArray(frame.data)) {
      this.attempt = 0; // a working connection resets the backoff
      this.renewedFor4401 = false;
      const fresh = frame.data.filter((e) => this.fresh(e));
      if (fresh.length) this.onEvents(fresh, Boolean(frame.replay));
    } else if (frame.type === 'heartbeat') {
      this.attempt = 0;
    } else if (frame.type === 'error') {
      this.lastError = frame.detail || frame.code || '';
    }
  }

  fresh(event) {
    const id = event.id;
    if (id === undefined) return true;
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > SEEN_CAP) this.seen.delete(this.seen.values().next().value);
    return true;
  }

  async closed(code, reason) {
    this.ws = null;
    if (this.stopped) return;
    const detail = this.lastError || reason || '';
    if (code === 4401) {
      if (!this.renewedFor4401 && (await this.session.renew())) {
        this.renewedFor4401 = true;
        this.connect();
        return;
      }
      this.onStatus({ state: 'error', text: 'The stream refused the token: sign in again.' });
      this.session.expired('Your session ended. Sign in again.');
      return;
    }
    if (FATAL[code]) {
      this.stopped = true;
      this.onStatus({ state: 'error', text: `${FATAL[code]}${detail ? ` ${detail}` : ''}` });
      return;
    }
    // Anything else (1012, 1013, 4408, a lost connection, an unexpected close) is retried.
    const wait = backoff(this.attempt++);
    const notice =
      code === 4408
        ? 'The browser fell behind the stream and the server dropped it (4408, slow consumer). Reconnecting and catching up…'
        : code === 1013
          ? 'The live tail backend is unavailable (1013). Retrying…'
          : code === 1012
            ? 'The stream service is restarting (1012). Reconnecting…'
            : `Connection lost${code ? ` (${code})` : ''}. Reconnecting…`;
    this.onStatus({ state: 'reconnecting', text: `Reconnecting in ${(wait / 1000).toFixed(1)} s`, notice });
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) this.connect();
    }, wait);
  }
}
