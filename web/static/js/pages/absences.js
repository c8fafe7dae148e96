// Absence notes of a class.  A guardian seals a note (kind, days, arrival,
// reason) to the teacher and every approved guardian of the child; the teacher
// reads the notes of a day and marks them seen.  The node keeps in clear only
// the child, the kind and the days, so each note is checked against what it
// decrypts to: a node that showed other days than the family wrote is caught here.

import { loadAccountKeys } from '../e2e/keystore.js';
import * as K from '../feed/classkeys.js';
import { fill } from '../feed/render.js';
import { api, busy, errorText, keyStoreName, showError, UserError } from './common.js';

const root = document.getElementById('absences');
const msgs = JSON.parse(document.getElementById('absence-messages').textContent);
const locale = document.documentElement.lang || 'en';
const classId = Number(root.dataset.classId);
const teacher = root.dataset.mode === 'teacher';
const list = document.getElementById('absence-list');
const status = document.getElementById('absences-status');
const template = document.getElementById('absence-template');
const form = document.getElementById('absence-form');
const dayInput = document.getElementById('absence-date');

let keys = null;
let cls = null;
let children = [];

function say(text) {
  status.textContent = text;
}

function fail(err) {
  const box = document.getElementById('absences-error');
  box.textContent = errorText(err);
  box.hidden = false;
}

function dayLabel(iso) {
  const [y, m, d] = iso.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(locale, {
    weekday: 'long', day: 'numeric', month: 'long', timeZone: 'UTC',
  });
}

/** The decrypted note says the same kind and days as the node's labels. */
function agrees(note, body) {
  return body && body.kind === note.kind && body.first_day === note.first_day && body.last_day === note.last_day;
}

async function render(note) {
  const node = template.content.firstElementChild.cloneNode(true);
  node.id = `a-${note.id}`;
  node.querySelector('.absence-child').textContent = note.child_name;
  const kind = node.querySelector('.absence-kind');
  kind.textContent = msgs[note.kind];
  kind.classList.add(`absence-kind-${note.kind}`);
  node.querySelector('.absence-when').textContent = note.first_day === note.last_day
    ? fill(msgs.day, { first: dayLabel(note.first_day) })
    : fill(msgs.days, { first: dayLabel(note.first_day), last: dayLabel(note.last_day) });
  const opened = await K.decryptItem(cls, note, keys, { id: note.id, kind: 'absence', parent: null });
  const problem = node.querySelector('.absence-problem');
  if (opened.error) {
    problem.textContent = msgs.unreadable;
    problem.hidden = false;
  } else {
    const body = opened.body;
    if (!agrees(note, body)) {
      problem.textContent = msgs.mismatch;
      problem.classList.add('warning');
      problem.hidden = false;
    }
    if (body.arrival) node.querySelector('.absence-arrival').textContent = fill(msgs.arrival, { time: body.arrival });
    node.querySelector('.absence-text').textContent = body.text || '';
  }
  node.querySelector('.absence-meta').textContent = fill(msgs.by, { name: note.author_name });
  const seen = node.querySelector('.absence-seen');
  seen.textContent = msgs.seen;
  seen.hidden = !note.seen_at;
  const actions = node.querySelector('.absence-actions');
  if (teacher && !note.seen_at) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'small';
    button.textContent = msgs.mark_seen;
    button.addEventListener('click', () => act(button, () => api(`/classes/${classId}/absences/${note.id}/seen`, {})));
    actions.append(button);
  }
  if (note.can_withdraw) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'small danger';
    button.textContent = msgs.withdraw;
    button.addEventListener('click', () => {
      if (window.confirm(msgs.withdraw_confirm)) {
        act(button, () => api(`/classes/${classId}/absences/${note.id}`, undefined, { method: 'DELETE' }));
      }
    });
    actions.append(button);
  }
  return node;
}

async function act(button, action) {
  button.disabled = true;
  try {
    await action();
    await load();
  } catch (err) {
    fail(err);
    button.disabled = false;
  }
}

async function load() {
  const day = teacher && dayInput.value ? `?day=${dayInput.value}` : '';
  const page = await api(`/classes/${classId}/absences${day}`);
  if (teacher) {
    if (!dayInput.value) dayInput.value = page.day;
    document.getElementById('absences-title').textContent =
      page.day === page.today ? msgs.title_today : fill(msgs.title_day, { day: dayLabel(page.day) });
  } else {
    children = page.children;
    setUpForm(page);
  }
  const nodes = [];
  for (const note of page.notes) nodes.push(await render(note));
  list.replaceChildren(...nodes);
  say(nodes.length ? '' : teacher ? msgs.none_day : msgs.none_mine);
}

function setUpForm(page) {
  const select = document.getElementById('absence-child');
  const chosen = select.value || root.dataset.childId || '';
  select.replaceChildren(...children.map((c) => new Option(c.name, String(c.id))));
  if (chosen) select.value = chosen;
  for (const id of ['absence-first', 'absence-last']) {
    const input = document.getElementById(id);
    input.min = page.earliest;
    input.max = page.latest;
  }
  if (!document.getElementById('absence-first').value) document.getElementById('absence-first').value = page.today;
  form.hidden = !children.length;
}

function showKindFields() {
  const late = form.querySelector('input[name="kind"]:checked').value === 'late';
  document.getElementById('absence-last-box').hidden = late;
  document.getElementById('absence-arrival-box').hidden = !late;
}

/** Who the note is sealed to, as the node lists it, checked against the class's signed log. */
function recipients(child) {
  const to = K.recipientsFor(cls, child.to);
  const teacherIn = to.some((m) => cls.state.members.get(m)?.role === 'teacher');
  if (to.length !== new Set(child.to).size || !to.includes(cls.me) || !teacherIn) throw new UserError(msgs.no_audience);
  return to;
}

async function send(event) {
  event.preventDefault();
  showError(form, '');
  const child = children.find((c) => String(c.id) === document.getElementById('absence-child').value);
  const kind = form.querySelector('input[name="kind"]:checked').value;
  const first = document.getElementById('absence-first').value;
  const last = kind === 'late' ? first : document.getElementById('absence-last').value || first;
  const arrival = kind === 'late' ? document.getElementById('absence-arrival').value || null : null;
  if (!first) {
    showError(form, msgs.first_missing);
    return;
  }
  busy(form, true);
  try {
    const body = { kind, first_day: first, last_day: last, arrival, text: document.getElementById('absence-text').value.trim() };
    const request = await K.encryptFor(cls, keys, 'absence', body, { to: recipients(child) });
    await api(`/classes/${classId}/absences`, {
      ...request, child: child.id, kind, first_day: first, last_day: kind === 'late' ? null : last,
    });
    document.getElementById('absence-text').value = '';
    document.getElementById('absence-last').value = '';
    document.getElementById('absence-arrival').value = '';
    await load();
    say(msgs.sent);
  } catch (err) {
    showError(form, errorText(err));
  } finally {
    busy(form, false);
  }
}

async function start() {
  keys = await loadAccountKeys(keyStoreName(root.dataset.accountId)).catch(() => null);
  if (!keys) throw new UserError(msgs.no_keys);
  cls = await K.openClass(classId, keys, root.dataset.accountId, msgs);
  if (cls.waiting) {
    say(msgs.waiting);
    return;
  }
  if (form) {
    form.addEventListener('submit', (event) => send(event).catch(fail));
    for (const radio of form.querySelectorAll('input[name="kind"]')) radio.addEventListener('change', showKindFields);
  }
  if (dayInput) dayInput.addEventListener('change', () => load().catch(fail));
  await load();
}

document.addEventListener('carnet:live', (event) => {
  const detail = event.detail || {};
  if (!['absence', 'absence_withdrawn'].includes(detail.type) || detail.class_id !== classId || !cls) return;
  event.preventDefault(); // shown here: no banner
  load().catch(fail);
});

start().catch((err) => {
  say('');
  fail(err);
}).finally(() => root.setAttribute('aria-busy', 'false'));
