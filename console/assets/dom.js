// DOM helpers. Log content is attacker-controlled, so the console builds every
// element with createElement and puts data in with textContent (never
// innerHTML); attributes are set one by one and event handlers are attached
// as functions, never as strings. The page's CSP also requires Trusted Types,
// so an innerHTML assignment anywhere would throw instead of parsing HTML.

/**
 * h('td', {class: 'level', title: t, onclick: fn}, 'text', childNode, ...)
 * Strings become text nodes; null/undefined/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (name.startsWith('on')) {
      throw new Error(`refusing a string event handler for ${name}`);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** The same for SVG elements (histogram). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (name.startsWith('on')) throw new Error('attach SVG handlers with addEventListener');
    el.setAttribute(name === 'class' ? 'class' : name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Replace all children of `el` (with nodes or text). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function show(el, visible = true) {
  el.hidden = !visible;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** 2026-03-01 10:00:00.123 in the browser's time zone. */
export function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? '');
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

/** Value for <input type="datetime-local"> (local time, minutes). */
export function toLocalInput(date) {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

export function formatCount(n) {
  return Number(n).toLocaleString('en-US');
}
