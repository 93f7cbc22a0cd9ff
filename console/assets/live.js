// Live mode of the results: the tail's events, newest first, a frame at a time,
// capped, with pause/resume and a status line.

import { $, fill, formatCount, show } from './dom.js';
import { LiveTail } from './tail.js';

const LIVE_CAP = 2000; // rows kept in live mode (and events buffered while paused)
const LIVE_HISTORY = 100; // tail=N when live mode starts
const LIVE_FRAME_ROWS = 200; // rows added per animation frame in live mode

/** Fills `table` (ResultsTable) from a LiveTail; `recent` learns the values seen. */
export function createLiveView({ table, session, recent, notify }) {
  let tail = null;
  const live = { pending: [], buffer: [], paused: false, dropped: 0, received: 0, scheduled: false };

  /** Start following the events that match `params` (of `tenant`, for a platform admin). */
  function startLive(params, tenant) {
    stopLive();
    table.clear();
    show($('#empty'), false);
    show($('#load-more'), false);
    Object.assign(live, { pending: [], buffer: [], paused: false, dropped: 0, received: 0 });
    updatePause();
    fill($('#summary'), `Live: newest first, the last ${LIVE_HISTORY} matching events, then new ones as they arrive (time range ignored).`);
    tail = new LiveTail({
      params,
      tenant,
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

  return { start: startLive, stop: stopLive };
}
