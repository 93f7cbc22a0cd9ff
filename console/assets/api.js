// The public API, over fetch. Errors are RFC 9457 problem+json; they become an
// ApiError whose message is what the person reads (title, detail, fields).

export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message);
    this.status = status;
    this.problem = problem || {};
  }
}

/** A readable sentence from a problem+json body (or whatever came back). */
export function problemMessage(status, problem) {
  if (!problem || typeof problem !== 'object') {
    return status ? `The server answered ${status}.` : 'The server could not be reached.';
  }
  const title = problem.title || `Error ${status}`;
  let text = problem.detail ? `${title}: ${problem.detail}` : title;
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  const extra = errors
    .map((e) => [e.field, e.message].filter(Boolean).join(': '))
    .filter((line) => line && !text.includes(line))
    .slice(0, 5);
  if (extra.length) text += ` (${extra.join('; ')})`;
  if (problem.request_id) text += ` [request id ${problem.request_id}]`;
  return text;
}

async function readProblem(resp) {
  const type = resp.headers.get('content-type') || '';
  if (type.includes('json')) {
    try {
      return await resp.json();
    } catch {
      return null;
    }
  }
  return null;
}

export class Api {
  /** `session` gives the token and tenant and may renew the token once on a 401. */
  constructor(session, base = '/api/v1') {
    this.session = session;
    this.base = base;
  }

  headers(extra = {}) {
    const headers = { Accept: 'application/json', ...extra };
    if (this.session.token) headers.Authorization = `Bearer ${this.session.token}`;
    if (this.session.platformAdmin && this.session.tenant) {
      headers['X-Tenant-ID'] = this.session.tenant;
    }
    return headers;
  }

  url(path, params) {
    const qs = params ? new URLSearchParams(params).toString() : '';
    return `${this.base}${path}${qs ? `?${qs}` : ''}`;
  }

  /** JSON in, JSON out; `raw: true` returns the Response (exports). */
  async request(method, path, { params, json, raw = false, retried = false, signal } = {}) {
    const init = { method, headers: this.headers(), signal, cache: 'no-store' };
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    }
    let resp;
    try {
      resp = await fetch(this.url(path, params), init);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, null, 'Cannot reach the server. Check your connection and try again.');
    }
    if (resp.status === 401 && !retried && (await this.session.renew())) {
      return this.request(method, path, { params, json, raw, retried: true, signal });
    }
    if (!resp.ok) {
      const problem = await readProblem(resp);
      if (resp.status === 401) this.session.expired(problemMessage(401, problem));
      throw new ApiError(resp.status, problem, problemMessage(resp.status, problem));
    }
    if (raw) return resp;
    if (resp.status === 204) return null;
    return resp.json();
  }

  get(path, params, opts = {}) {
    return this.request('GET', path, { params, ...opts });
  }
  post(path, json) {
    return this.request('POST', path, { json });
  }
  patch(path, json) {
    return this.request('PATCH', path, { json });
  }
  delete(path) {
    return this.request('DELETE', path);
  }
}

/** POST /auth/token with client credentials (JSON). */
export async function requestToken(clientId, clientSecret) {
  let resp;
  try {
    resp = await fetch('/api/v1/auth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
      }),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, null, 'Cannot reach the server. Check your connection and try again.');
  }
  const body = await readProblem(resp);
  if (!resp.ok) {
    const message =
      resp.status === 401
        ? 'Sign-in failed: unknown client id or wrong secret (or the key was revoked, or its tenant disabled).'
        : problemMessage(resp.status, body);
    throw new ApiError(resp.status, body, message);
  }
  return body;
}
