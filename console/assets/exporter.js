// Export: the token goes in the Authorization header, never in a URL, so the
// file is fetched and saved from a Blob.

import { fill, formatCount, h } from './dom.js';

/** `params()` gives the current query's parameters; the format comes from `select`. */
export function attachExport(button, select, { api, notify, params: currentParams }) {
  button.addEventListener('click', async () => {
    const format = select.value;
    button.disabled = true;
    fill(button, 'Exporting…');
    try {
      const params = [...currentParams(), ['format', format]];
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
}
