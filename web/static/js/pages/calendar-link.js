// The account page's private calendar link: the node keeps only a hash of
// the token, so the link is shown once, right after it is made; making a new
// one replaces it (the old link stops working).

import { api, errorText } from './common.js';

const msgs = JSON.parse(document.getElementById('calendar-messages').textContent);
const state = document.getElementById('calendar-state');
const create = document.getElementById('calendar-new');
const box = document.getElementById('calendar-link-box');
const input = document.getElementById('calendar-link');
const error = document.getElementById('calendar-error');
const locale = document.documentElement.lang || 'en';

function show(info) {
  const date = info.created_at ? new Date(info.created_at).toLocaleString(locale, { dateStyle: 'long', timeStyle: 'short' }) : null;
  state.textContent = date ? msgs.since.replace('{date}', date) : msgs.none;
  create.textContent = date ? msgs.replace : msgs.create;
  create.dataset.exists = date ? '1' : '';
}

create.addEventListener('click', async () => {
  if (create.dataset.exists && !window.confirm(msgs.confirm_replace)) return;
  error.hidden = true;
  try {
    const info = await api('/account/calendar', {});
    show(info);
    input.value = info.url;
    box.hidden = false;
    input.select();
  } catch (err) {
    error.textContent = errorText(err);
    error.hidden = false;
  }
});

document.getElementById('calendar-copy').addEventListener('click', async () => {
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    state.textContent = msgs.copied;
  } catch {
    document.execCommand('copy'); // older browsers, or no clipboard permission
  }
});

api('/account/calendar').then(show, (err) => { error.textContent = errorText(err); error.hidden = false; });
