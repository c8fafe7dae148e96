// Shared page helpers: the CSRF token, JSON calls to /api/v1, translated
// messages handed over by the template, and log-out (which also removes this
// browser's keys: the vault on the node lets the person unlock them again).

import { wipeAll } from '../e2e/keystore.js';

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function setCsrfToken(token) {
  document.querySelector('meta[name="csrf-token"]').content = token;
  for (const input of document.querySelectorAll('input[name="csrf_token"]')) input.value = token;
}

/** Messages translated server-side, from <script type="application/json" id="js-messages">. */
export function messages() {
  const node = document.getElementById('js-messages');
  return node ? JSON.parse(node.textContent) : {};
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || messages().failed || 'Something went wrong.');
    this.status = status;
    this.code = body?.error?.code;
    this.field = body?.error?.field;
  }
}

/** POST (or GET when body is undefined) JSON to /api/v1; throws ApiError with the node's message. */
export async function api(path, body, { method } = {}) {
  const init = {
    method: method || (body === undefined ? 'GET' : 'POST'),
    headers: { Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    credentials: 'same-origin',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, { error: { message: messages().network } });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  if (data && typeof data.csrf_token === 'string') setCsrfToken(data.csrf_token);
  return data;
}

/** An error translated for the person: the node's own message, or ours; never a library's English. */
export class UserError extends Error {}

export function errorText(err) {
  if (err instanceof ApiError || err instanceof UserError) return err.message;
  console.error(err);
  return messages().failed;
}

/** Show an error in the form's alert box (role=alert, so screen readers announce it). */
export function showError(form, message) {
  const box = form.querySelector('.alert.error');
  box.textContent = message;
  box.hidden = !message;
}

export function busy(form, on, progressId) {
  for (const button of form.querySelectorAll('button')) button.disabled = on;
  form.setAttribute('aria-busy', on ? 'true' : 'false');
  if (progressId) document.getElementById(progressId).hidden = !on;
}

export function keyStoreName(accountId) {
  return `${location.origin}|${accountId}`;
}

export function homeFor(role) {
  return { admin: '/admin', teacher: '/classes', guardian: '/home' }[role] || '/';
}

/** Check the browser has the WebCrypto algorithms Carnet needs. */
export async function cryptoSupported() {
  try {
    await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign']);
    await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
    return true;
  } catch {
    return false;
  }
}

function wireLogout() {
  for (const form of document.querySelectorAll('form[data-logout]')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const { turnOffQuietly } = await import('../push.js'); // this browser stops notifying the person
        await turnOffQuietly();
        await wipeAll();
      } finally {
        form.submit();
      }
    });
  }
}

function wireConfirms() {
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

/** A server-rendered form error may sit far down the page: bring it into view. */
function revealServerError() {
  const alert = document.querySelector('main .alert.error[role=alert]:not([hidden])');
  if (!alert || !alert.textContent.trim()) return;
  alert.setAttribute('tabindex', '-1');
  alert.scrollIntoView({ block: 'center' });
  alert.focus({ preventScroll: true });
}

/**
 * Guardians: a banner at the top of every page while an emergency alert
 * waits for their "I have read this" (one GET per page), and live when one
 * arrives (SSE `alert`). No alert content here: only a link to its page, and
 * the name of the school that sent it when it is a child's other school.
 */
async function alertBanner() {
  const banner = document.getElementById('alert-banner');
  if (!banner) return;
  const show = (id, drill, school) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return;
    const link = document.createElement('a');
    link.href = `/alerts/${id}`;
    link.className = 'alert-banner-link';
    if (drill) {
      const label = document.createElement('span');
      label.className = 'drill-label';
      label.textContent = 'EXERCICE / DRILL';
      link.append(label, ' ');
    }
    const title = document.createElement('strong');
    title.textContent = `⚠ ${banner.dataset.text}`;
    link.append(title, ' ');
    if (school) {
      const from = document.createElement('strong');
      from.className = 'alert-banner-school';
      from.textContent = `— ${school}`;
      link.append(from, ' ');
    }
    const open = document.createElement('span');
    open.textContent = banner.dataset.open;
    link.append(open);
    banner.replaceChildren(link);
    banner.hidden = false;
  };
  const pending = async (only = null) => {
    const { alerts } = await api('/alerts');
    return alerts.find((a) => (only ? a.id === only : a.state === 'active' && !a.acknowledged_at));
  };
  document.addEventListener('carnet:live', async (event) => {
    const detail = event.detail || {};
    if (detail.type !== 'alert' || typeof detail.alert !== 'string') return;
    const alert = await pending(detail.alert).catch(() => null);
    show(detail.alert, Boolean(alert && alert.drill), alert ? alert.school : null);
  });
  const alert = await pending().catch(() => null);
  if (alert) show(alert.id, alert.drill, alert.school);
}

wireLogout();
wireConfirms();
revealServerError();
alertBanner();
