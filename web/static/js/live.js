// Live updates: one Server-Sent Events stream per page (GET /api/v1/events).
// Each event ({type, class_id, message}: ids and kinds, never content) is
// re-dispatched on `document` as a cancelable `carnet:live` CustomEvent. A page
// that shows the change itself (the feed) calls preventDefault(); otherwise a
// small "New post — Show" banner offers to open it.
import { messages } from './pages/common.js';

const PUBLIC_ID = /^[A-Za-z0-9_-]{1,64}$/;
let source = null;

function feedUrl(data) {
  if (!Number.isInteger(data.class_id) || data.class_id < 1) return null;
  if (data.type === 'absence') return `/classes/${data.class_id}/absences`;
  const anchor = typeof data.message === 'string' && PUBLIC_ID.test(data.message) ? `#m-${data.message}` : '';
  return `/classes/${data.class_id}/feed${anchor}`;
}

function showBanner(data) {
  const url = feedUrl(data);
  if (!url) return;
  const msgs = messages();
  let banner = document.getElementById('live-banner');
  if (!banner) {
    banner = document.createElement('div');
    banner.id = 'live-banner';
    banner.className = 'live-banner no-print';
    banner.setAttribute('role', 'status');
    const text = document.createElement('span');
    text.textContent = msgs.live_post || 'New post';
    const link = document.createElement('a');
    link.textContent = msgs.live_show || 'Show';
    link.addEventListener('click', (event) => {
      const target = new URL(link.href);
      if (target.pathname === location.pathname) { // same page: the hash alone would not reload it
        event.preventDefault();
        location.hash = target.hash;
        location.reload();
      }
    });
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'link';
    close.textContent = '×';
    close.setAttribute('aria-label', msgs.live_dismiss || 'Dismiss');
    close.addEventListener('click', () => { banner.hidden = true; });
    banner.append(text, ' — ', link, close);
    document.body.append(banner);
  }
  banner.querySelector('span').textContent = data.type === 'absence'
    ? msgs.live_absence || 'New absence note'
    : msgs.live_post || 'New post';
  banner.querySelector('a').href = url;
  banner.hidden = false;
}

function open() {
  if (source || !('EventSource' in window)) return;
  source = new EventSource('/api/v1/events');
  source.addEventListener('message', (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!data || typeof data.type !== 'string') return;
    const live = new CustomEvent('carnet:live', { detail: data, cancelable: true });
    if (document.dispatchEvent(live) && ['post', 'absence'].includes(data.type)) showBanner(data);
  });
  // The browser reconnects by itself; after a log-out the node answers 401 and it stops.
}

function close() {
  if (source) source.close();
  source = null;
}

// Let the page enter the back/forward cache, and resume when it comes back.
window.addEventListener('pagehide', close);
window.addEventListener('pageshow', (event) => { if (event.persisted) open(); });
open();
