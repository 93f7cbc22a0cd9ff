// Who is signed in. The access token lives in sessionStorage (this tab only,
// gone when the tab closes; never localStorage, never a cookie) so a reload
// keeps the session. The client secret stays in memory only: while the page
// lives the token is renewed before it expires; after a reload it cannot be,
// and the person is asked to sign in again shortly before it runs out.

import { requestToken } from './api.js';

const STORE = 'logserver.session';

const PERMISSIONS = {
  read: ['admin', 'auditor', 'viewer'],
  export: ['admin', 'auditor'],
  manage: ['admin'],
  ingest: ['admin', 'writer'],
};

/** Seconds before expiry at which a token is renewed: 60 s or 10% of its life, whichever is more. */
export function renewLead(lifetime) {
  return Math.max(60, lifetime * 0.1);
}

export class Session extends EventTarget {
  constructor() {
    super();
    this.token = null;
    this.expiresAt = 0; // epoch seconds
    this.lifetime = 0;
    this.me = null;
    this.clientId = null;
    this.tenant = ''; // the tenant a platform admin acts on
    this.secret = null; // memory only
    this.timer = null;
    this.renewing = null;
  }

  get signedIn() {
    return Boolean(this.token && this.me);
  }
  get role() {
    return this.me?.role ?? null;
  }
  get platformAdmin() {
    return Boolean(this.me?.platform_admin);
  }
  /** The tenant requests act on: a platform admin's choice, else the token's own. */
  get activeTenant() {
    return this.platformAdmin ? this.tenant : this.me?.tenant ?? '';
  }
  can(permission) {
    return Boolean(this.role && PERMISSIONS[permission]?.includes(this.role));
  }

  /** A token saved by this tab earlier (reload); null when none or expired. */
  restore() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(STORE) || 'null');
    } catch {
      saved = null;
    }
    if (!saved?.token || saved.expires_at * 1000 <= Date.now() + 5000) {
      sessionStorage.removeItem(STORE);
      return false;
    }
    this.token = saved.token;
    this.expiresAt = saved.expires_at;
    this.lifetime = saved.lifetime || 3600;
    this.clientId = saved.client_id || null;
    return true;
  }

  save() {
    sessionStorage.setItem(
      STORE,
      JSON.stringify({
        token: this.token,
        expires_at: this.expiresAt,
        lifetime: this.lifetime,
        client_id: this.clientId,
      }),
    );
  }

  async signIn(clientId, clientSecret) {
    const answer = await requestToken(clientId, clientSecret);
    this.clientId = clientId;
    this.secret = clientSecret;
    this.accept(answer);
  }

  accept(answer) {
    this.token = answer.access_token;
    this.lifetime = answer.expires_in;
    this.expiresAt = Math.floor(Date.now() / 1000) + answer.expires_in;
    this.save();
    this.schedule();
  }

  /** GET /auth/me: the role, tenant and expiry the server sees in the token. */
  async loadMe(api) {
    this.me = await api.get('/auth/me');
    if (this.me.expires_at) this.expiresAt = this.me.expires_at;
    this.schedule();
    return this.me;
  }

  schedule() {
    clearTimeout(this.timer);
    const remaining = this.expiresAt - Date.now() / 1000;
    const lead = renewLead(this.lifetime || remaining);
    if (this.secret) {
      this.timer = setTimeout(() => this.renew(), Math.max(0, remaining - lead) * 1000);
    } else {
      // Reloaded page: the secret is gone. Warn, then end the session at expiry.
      const warnIn = Math.max(0, remaining - lead) * 1000;
      this.timer = setTimeout(() => {
        this.dispatchEvent(new CustomEvent('expiring', { detail: { at: this.expiresAt } }));
        this.timer = setTimeout(
          () => this.expired('Your session expired. Sign in again.'),
          Math.max(0, this.expiresAt - Date.now() / 1000) * 1000,
        );
      }, warnIn);
    }
  }

  /** A new token with the same credential; false when that is not possible. */
  async renew() {
    if (!this.secret || !this.clientId) return false;
    if (!this.renewing) {
      this.renewing = requestToken(this.clientId, this.secret)
        .then((answer) => {
          this.accept(answer);
          this.dispatchEvent(new CustomEvent('renewed'));
          return true;
        })
        .catch(() => false)
        .finally(() => {
          this.renewing = null;
        });
    }
    return this.renewing;
  }

  expired(message) {
    this.clear();
    this.dispatchEvent(new CustomEvent('signedout', { detail: { message } }));
  }

  signOut() {
    this.clear();
    this.dispatchEvent(new CustomEvent('signedout', { detail: { message: '' } }));
  }

  clear() {
    clearTimeout(this.timer);
    this.token = null;
    this.secret = null;
    this.me = null;
    this.expiresAt = 0;
    sessionStorage.removeItem(STORE);
  }
}
