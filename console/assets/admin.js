// Tenants and API keys (role admin). A platform admin sees every tenant and
// may create, disable and enable them; a tenant's own admin sees its tenant
// only and manages its name, retention and keys. Controls a role may not use
// are not shown; the API still decides (a refusal is shown as its message).

import { $, fill, formatTime, h, show } from './dom.js';
import { copyText } from './results.js';

const ROLES = ['viewer', 'auditor', 'writer', 'admin'];

export class AdminView {
  constructor(root, { api, session, notify, confirm }) {
    this.root = root;
    this.api = api;
    this.session = session;
    this.notify = notify;
    this.confirm = confirm;
    this.selected = null;
    $('#tenant-create', root).addEventListener('submit', (e) => this.createTenant(e));
    $('#key-create', root).addEventListener('submit', (e) => this.createKey(e));
    const roleSelect = $('#key-role', root);
    fill(roleSelect, ...ROLES.map((r) => h('option', { value: r }, r)));
  }

  async load() {
    show($('#tenant-create-panel', this.root), this.session.platformAdmin);
    let tenants = [];
    try {
      const answer = await this.api.get('/tenants', { limit: 1000 });
      tenants = answer.data;
    } catch (err) {
      this.notify(err.message, 'error');
      return;
    }
    this.renderTenants(tenants);
    const keep = tenants.find((t) => t.key === this.selected);
    const pick = keep || tenants.find((t) => t.key === this.session.activeTenant) || tenants[0];
    if (pick) await this.selectTenant(pick.key);
    else {
      this.selected = null;
      show($('#keys-panel', this.root), false);
    }
  }

  renderTenants(tenants) {
    const tbody = $('#tenants-table tbody', this.root);
    const platform = this.session.platformAdmin;
    if (!tenants.length) {
      fill(tbody, h('tr', {}, h('td', { colspan: '5', class: 'empty' }, 'No tenants yet: create the first one above.')));
      return;
    }
    fill(
      tbody,
      ...tenants.map((t) => {
        const retention = h('input', {
          type: 'number',
          min: '1',
          max: '3650',
          value: String(t.retention_days),
          class: 'retention',
          'aria-label': `Retention days of ${t.key}`,
        });
        const save = h('button', { type: 'button', class: 'small' }, 'Save');
        save.addEventListener('click', () => this.saveRetention(t.key, retention.value));
        const actions = h('td', { class: 'actions' });
        const keys = h('button', { type: 'button', class: 'small' }, 'API keys');
        keys.addEventListener('click', () => this.selectTenant(t.key));
        actions.append(keys);
        if (platform) {
          const disabled = t.status === 'disabled';
          const toggle = h('button', { type: 'button', class: `small ${disabled ? '' : 'danger'}` }, disabled ? 'Enable' : 'Disable');
          toggle.addEventListener('click', () => this.setStatus(t.key, disabled));
          actions.append(toggle);
        }
        return h(
          'tr',
          { dataset: { tenant: t.key }, class: t.key === this.selected ? 'selected' : '' },
          h('td', {}, h('strong', {}, t.key), h('div', { class: 'muted' }, t.name)),
          h('td', { class: 'retention-cell' }, retention, ' days ', save),
          h('td', {}, h('span', { class: `status status-${t.status}` }, t.status)),
          h('td', { class: 'muted' }, formatTime(t.created_at).slice(0, 16)),
          actions,
        );
      }),
    );
  }

  async createTenant(e) {
    e.preventDefault();
    const form = e.target;
    const body = {
      key: form.elements.key.value.trim(),
      name: form.elements.name.value.trim() || form.elements.key.value.trim(),
      retention_days: Number(form.elements.retention_days.value || 30),
    };
    const description = form.elements.description.value.trim();
    if (description) body.description = description;
    try {
      const created = await this.api.post('/tenants', body);
      this.notify(`Tenant ${created.key} created.`, 'ok');
      form.reset();
      this.selected = created.key;
      await this.load();
      this.root.dispatchEvent(new CustomEvent('tenants-changed'));
    } catch (err) {
      this.notify(err.message, 'error');
    }
  }

  async saveRetention(key, value) {
    try {
      const t = await this.api.patch(`/tenants/${encodeURIComponent(key)}`, {
        retention_days: Number(value),
      });
      this.notify(`Retention of ${t.key} is now ${t.retention_days} days.`, 'ok');
    } catch (err) {
      this.notify(err.message, 'error');
    }
  }

  async setStatus(key, enable) {
    if (!enable) {
      const ok = await this.confirm(
        `Disable tenant ${key}? Its keys stop working at once and its open streams close. Its data stays; you can enable it again.`,
        'Disable',
      );
      if (!ok) return;
    }
    try {
      const path = `/tenants/${encodeURIComponent(key)}`;
      if (enable) await this.api.patch(path, { status: 'active' });
      else await this.api.delete(path);
      this.notify(`Tenant ${key} ${enable ? 'enabled' : 'disabled'}.`, 'ok');
      await this.load();
      this.root.dispatchEvent(new CustomEvent('tenants-changed'));
    } catch (err) {
      this.notify(err.message, 'error');
    }
  }

  async selectTenant(key) {
    this.selected = key;
    for (const tr of this.root.querySelectorAll('#tenants-table tbody tr')) {
      tr.classList.toggle('selected', tr.dataset.tenant === key);
    }
    fill($('#keys-tenant', this.root), key);
    show($('#keys-panel', this.root), true);
    await this.loadKeys();
  }

  async loadKeys() {
    const tbody = $('#keys-table tbody', this.root);
    let keys;
    try {
      keys = (await this.api.get(`/tenants/${encodeURIComponent(this.selected)}/api-keys`)).data;
    } catch (err) {
      this.notify(err.message, 'error');
      return;
    }
    if (!keys.length) {
      fill(tbody, h('tr', {}, h('td', { colspan: '6', class: 'empty' }, 'No API keys: create one above (a writer key to send events, a viewer key to read them).')));
      return;
    }
    fill(
      tbody,
      ...keys.map((k) => {
        const actions = h('td', { class: 'actions' });
        if (!k.revoked_at) {
          const revoke = h('button', { type: 'button', class: 'small danger' }, 'Revoke');
          revoke.addEventListener('click', () => this.revokeKey(k));
          actions.append(revoke);
        }
        return h(
          'tr',
          { dataset: { key: k.id }, class: k.revoked_at ? 'revoked' : '' },
          h('td', {}, h('code', {}, k.id)),
          h('td', {}, k.name),
          h('td', {}, k.role),
          h('td', { class: 'muted' }, formatTime(k.created_at).slice(0, 16)),
          h('td', { class: 'muted' }, k.revoked_at ? `revoked ${formatTime(k.revoked_at).slice(0, 16)}` : k.last_used_at ? `used ${formatTime(k.last_used_at).slice(0, 16)}` : 'never used'),
          actions,
        );
      }),
    );
  }

  async createKey(e) {
    e.preventDefault();
    const form = e.target;
    const body = { name: form.elements.name.value.trim(), role: form.elements.role.value };
    try {
      const created = await this.api.post(`/tenants/${encodeURIComponent(this.selected)}/api-keys`, body);
      form.reset();
      this.showSecret(created);
      await this.loadKeys();
    } catch (err) {
      this.notify(err.message, 'error');
    }
  }

  /** The secret is in the create answer only: show it once, then forget it. */
  showSecret(created) {
    const dialog = $('#secret-dialog');
    const body = $('#secret-body', dialog);
    const field = (label, value, cls) => {
      const input = h('input', { type: 'text', readonly: true, value, class: cls, 'aria-label': label, spellcheck: 'false' });
      const copy = h('button', { type: 'button', class: 'small copy' }, 'Copy');
      copy.addEventListener('click', () => copyText(value, copy));
      input.addEventListener('focus', () => input.select());
      return h('label', { class: 'secret-field' }, h('span', {}, label), h('span', { class: 'row-inline' }, input, copy));
    };
    fill(
      body,
      h('p', {}, `Key "${created.name}" (${created.role}) for tenant ${created.tenant}. `, h('strong', {}, 'This secret is shown only now'), ': copy it into your secret store. The server keeps only its hash.'),
      field('client id', created.client_id, 'client-id'),
      field('client secret', created.client_secret, 'client-secret'),
    );
    dialog.addEventListener('close', () => body.replaceChildren(), { once: true });
    dialog.showModal();
  }

  async revokeKey(k) {
    const ok = await this.confirm(
      `Revoke key ${k.name} (${k.id})? Tokens issued for it stop working at once.`,
      'Revoke',
    );
    if (!ok) return;
    try {
      await this.api.delete(`/tenants/${encodeURIComponent(this.selected)}/api-keys/${encodeURIComponent(k.id)}`);
      this.notify(`Key ${k.id} revoked.`, 'ok');
      await this.loadKeys();
    } catch (err) {
      this.notify(err.message, 'error');
    }
  }
}
