// Notices for the person (errors stay until dismissed, the rest fade) and the
// confirmation dialog.

import { $, fill, h } from './dom.js';

/** A message for the person: errors stay until dismissed, the rest fade. */
export function notify(message, kind = 'error') {
  const close = h('button', { type: 'button', class: 'link close', 'aria-label': 'Dismiss' }, '×');
  const note = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('span', {}, message), close);
  close.addEventListener('click', () => note.remove());
  const box = $('#notices');
  box.append(note);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => note.remove(), 6000);
}

export function clearNotices() {
  $('#notices').replaceChildren();
}

export function confirmDialog(text, okLabel = 'OK') {
  const dialog = $('#confirm-dialog');
  fill($('#confirm-text'), text);
  fill($('#confirm-ok'), okLabel);
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}
