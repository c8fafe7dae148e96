// Actionable posts in the browser: the composer's "Add: event / sign-up /
// permission slip / poll", their rendering, answering (a permission slip is
// signed with the guardian's identity key), the teacher's per-family status
// with its CSV export, and "Add to my calendar" (.ics with the decrypted title).
//
// The labels (title, place, slot and option labels, the slip's text) live in
// the post's encrypted body; the node holds the structure only (type,
// deadline, times, choice ids, capacities) and enforces it. The decrypted
// copy of the structure must match the node's, or the post says so.
// Only textContent and attributes are set from post data.

import { signObject, verifyObject, b64urlDecode } from '../e2e/suite.js';
import { api, errorText } from '../pages/common.js';
import { downloadCsv, downloadEvent } from './action-files.js';

export const SLIP_CONTEXT = 'carnet-e2e-1/slip-answer';
const FIXED = { event: ['yes', 'no', 'maybe'], slip: ['agree', 'decline'] };
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

function el(tag, { cls, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

function button(text, cls, onClick) {
  const b = el('button', { cls, text, attrs: { type: 'button' } });
  b.addEventListener('click', onClick);
  return b;
}

function when(iso, locale, allDay = false) {
  const date = new Date(iso);
  return allDay
    ? date.toLocaleDateString(locale, { dateStyle: 'full', timeZone: 'UTC' })
    : date.toLocaleString(locale, { dateStyle: 'full', timeStyle: 'short' });
}

/** The text for a choice id: fixed answers are translated, others come from the encrypted labels. */
export function choiceLabel(id, labels, msgs) {
  return msgs[`answer_${id}`] || (labels && labels[id]) || id;
}

// ------------------------------------------------------------------ composer

/** Wire the composer's action part; returns {collect, reset}. */
export function wireComposer(form, msgs) {
  const kind = form.querySelector('#action-type');
  const fields = form.querySelector('#action-fields');
  const list = form.querySelector('#action-choices');
  const allDay = form.querySelector('#action-all-day');
  const show = () => {
    const type = kind.value;
    fields.hidden = !type;
    for (const part of fields.querySelectorAll('[data-for]')) part.hidden = !part.dataset.for.split(' ').includes(type);
    for (const cap of list.querySelectorAll('.choice-capacity')) cap.hidden = type !== 'signup';
    if ((type === 'signup' || type === 'poll') && !list.children.length) { addChoice(); addChoice(); }
  };
  const addChoice = () => {
    if (list.children.length >= LETTERS.length) return;
    const li = el('li', { cls: 'choice-row' });
    const n = list.children.length + 1;
    const label = el('input', { cls: 'choice-label', attrs: { type: 'text', maxlength: '200', 'aria-label': fill(msgs.choice_n, { n }) } });
    const cap = el('input', { cls: 'choice-capacity', attrs: { type: 'number', min: '1', max: '10000', placeholder: msgs.places_any, 'aria-label': msgs.places } });
    cap.hidden = kind.value !== 'signup';
    const remove = button('×', 'small link', () => { li.remove(); });
    remove.setAttribute('aria-label', msgs.remove_choice);
    li.append(label, cap, remove);
    list.append(li);
  };
  kind.addEventListener('change', show);
  form.querySelector('#action-add-choice').addEventListener('click', addChoice);
  allDay.addEventListener('change', () => {
    for (const id of ['#action-start', '#action-end']) form.querySelector(id).type = allDay.checked ? 'date' : 'datetime-local';
  });
  const reset = () => { list.replaceChildren(); kind.value = ''; allDay.checked = false; allDay.dispatchEvent(new Event('change')); show(); };
  return { collect: () => collect(form, msgs), reset };
}

function isoOf(input, dateOnly) {
  if (!input.value) return null;
  if (dateOnly) return input.value; // a plain date: the same day wherever the family lives
  const d = new Date(input.value);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** {body, structure} of the composer's action, or null; throws Error(message) for a person. */
function collect(form, msgs) {
  const type = form.querySelector('#action-type').value;
  if (!type) return null;
  const title = form.querySelector('#action-title').value.trim();
  if (!title) throw new Error(msgs.action_title_missing);
  const allDay = type === 'event' && form.querySelector('#action-all-day').checked;
  const structure = { type, deadline: isoOf(form.querySelector('#action-deadline'), false) };
  const body = { type, title };
  if (type === 'event') {
    structure.starts_at = isoOf(form.querySelector('#action-start'), allDay);
    structure.ends_at = isoOf(form.querySelector('#action-end'), allDay);
    structure.all_day = allDay;
    if (!structure.starts_at) throw new Error(msgs.action_start_missing);
    body.place = form.querySelector('#action-place').value.trim();
  }
  if (type === 'slip') body.text = form.querySelector('#action-slip-text').value.trim();
  if (type === 'signup' || type === 'poll') {
    const rows = [...form.querySelectorAll('#action-choices .choice-row')]
      .map((row) => ({ label: row.querySelector('.choice-label').value.trim(), cap: row.querySelector('.choice-capacity').value }))
      .filter((r) => r.label);
    if (rows.length < (type === 'poll' ? 2 : 1)) throw new Error(type === 'poll' ? msgs.action_two_options : msgs.action_one_slot);
    structure.choices = rows.map((r, i) => ({ id: LETTERS[i], capacity: type === 'signup' && r.cap ? Number(r.cap) : null }));
    body.labels = Object.fromEntries(rows.map((r, i) => [LETTERS[i], r.label]));
    if (type === 'poll') structure.multiple = form.querySelector('#action-multiple').checked;
  }
  Object.assign(body, { structure });
  return { body, structure };
}

// ------------------------------------------------------------------ checks

const sameTime = (a, b) => (a ? Date.parse(a) : null) === (b ? Date.parse(b) : null);

/** Whether the decrypted structure (signed by the teacher) is the one the node enforces. */
export function structureMatches(node, signed) {
  if (!signed || signed.type !== node.type) return false;
  if (!sameTime(signed.deadline, node.deadline)) return false;
  if (node.type === 'event') {
    if (!sameTime(signed.starts_at, node.starts_at) || !sameTime(signed.ends_at, node.ends_at)) return false;
    if (Boolean(signed.all_day) !== node.all_day) return false;
  }
  if (Boolean(signed.multiple) !== node.multiple) return false;
  const mine = (signed.choices || []).map((c) => `${c.id}:${c.capacity ?? ''}`).join(',');
  const theirs = node.choices.map((c) => `${c.id}:${c.capacity ?? ''}`).join(',');
  return mine === theirs;
}

// ------------------------------------------------------------------ rendering

/** The action part of a post. `ctx` = {msgs, locale, handlers}. */
export function renderAction(item, body, ctx) {
  const { msgs, locale } = ctx;
  const action = item.action;
  const labels = body.action || {};
  const box = el('section', { cls: `action action-${action.type}`, attrs: { 'aria-label': msgs[`kind_${action.type}`] } });
  const head = el('p', { cls: 'action-head' });
  head.append(el('span', { cls: 'tag action-tag', text: msgs[`kind_${action.type}`] }), el('strong', { cls: 'action-title', text: ` ${labels.title || ''}` }));
  box.append(head);
  if (!structureMatches(action, labels.structure)) {
    box.append(el('p', { cls: 'alert error action-mismatch', text: msgs.action_mismatch }));
  }
  if (action.type === 'event') {
    const end = action.ends_at && !sameTime(action.ends_at, action.starts_at) ? ` → ${when(action.ends_at, locale, action.all_day)}` : '';
    box.append(el('p', { cls: 'action-when', text: `🗓 ${when(action.starts_at, locale, action.all_day)}${end}` }));
    if (labels.place) box.append(el('p', { cls: 'action-place', text: `📍 ${labels.place}` }));
    box.append(button(msgs.add_to_calendar, 'small secondary add-calendar', () => downloadEvent(item, labels, msgs)));
  }
  if (action.type === 'slip' && labels.text) box.append(el('p', { cls: 'slip-text', text: labels.text }));
  if (action.deadline) {
    box.append(el('p', { cls: `hint action-deadline${action.open ? '' : ' closed'}`, text: fill(action.open ? msgs.answer_before : msgs.answers_closed, { date: when(action.deadline, locale) }) }));
  }
  if (action.type === 'signup') {
    const slots = el('ul', { cls: 'slots' });
    for (const c of action.choices) {
      const left = c.capacity === null ? msgs.places_unlimited : fill(msgs.places_left, { left: Math.max(0, c.capacity - c.taken), capacity: c.capacity });
      slots.append(el('li', { text: `${choiceLabel(c.id, labels.labels, msgs)} — ${left}` }));
    }
    box.append(slots);
  }
  if (action.answers) {
    for (const mine of action.answers) box.append(renderMyAnswer(item, labels, mine, ctx));
  } else {
    box.append(renderSummary(item, body, ctx));
  }
  return box;
}

function renderMyAnswer(item, labels, mine, ctx) {
  const { msgs, locale, handlers } = ctx;
  const action = item.action;
  const form = el('div', { cls: 'my-answer', attrs: { role: 'group', 'aria-label': fill(msgs.answer_for, { child: mine.child }) } });
  form.append(el('p', { cls: 'answer-for', text: fill(msgs.answer_for, { child: mine.child }) }));
  const chosen = new Set(mine.choice || []);
  const send = (choice) => handlers.answerAction(item, mine, choice);
  const ids = FIXED[action.type] || action.choices.map((c) => c.id);
  const row = el('div', { cls: 'answer-buttons' });
  if (action.type === 'poll' && action.multiple) {
    for (const id of ids) {
      const label = el('label', { cls: 'choice' });
      const box = el('input', { attrs: { type: 'checkbox', value: id } });
      box.checked = chosen.has(id);
      box.disabled = !action.open;
      label.append(box, document.createTextNode(` ${choiceLabel(id, labels.labels, msgs)}`));
      row.append(label);
    }
    const vote = button(msgs.vote, 'small', () => send([...row.querySelectorAll('input:checked')].map((i) => i.value)));
    vote.disabled = !action.open;
    row.append(vote);
  } else {
    for (const id of ids) {
      const slot = action.choices.find((c) => c.id === id);
      const full = slot && slot.capacity !== null && slot.taken >= slot.capacity && !chosen.has(id);
      const text = action.type === 'slip' ? msgs[`sign_${id}`] : choiceLabel(id, labels.labels, msgs);
      const b = button(text, `small${chosen.has(id) ? ' chosen' : ' secondary'}`, () => send([id]));
      b.setAttribute('aria-pressed', String(chosen.has(id)));
      b.disabled = !action.open || full;
      row.append(b);
    }
    if (action.type === 'signup' && chosen.size && action.open) row.append(button(msgs.withdraw, 'small link', () => send(null)));
  }
  form.append(row);
  if (mine.choice) {
    const what = mine.choice.map((id) => choiceLabel(id, labels.labels, msgs)).join(', ');
    // a guardian at the class's school this node has no account for is "another guardian"
    form.append(el('p', { cls: 'hint answered', text: fill(msgs.answered_by, { answer: what, name: mine.by || msgs.another_guardian, date: when(mine.at, locale) }) }));
  }
  return form;
}

function renderSummary(item, body, ctx) {
  const { msgs, handlers } = ctx;
  const action = item.action;
  const labels = body.action || {};
  const box = el('div', { cls: 'action-summary' });
  box.append(el('p', { cls: 'answered-count', text: fill(msgs.answered_count, { answered: action.answered, total: action.total }) }));
  const ids = FIXED[action.type] || action.choices.map((c) => c.id);
  const counts = el('ul', { cls: 'counts' });
  for (const id of ids) counts.append(el('li', { text: fill(msgs.count_line, { label: choiceLabel(id, labels.labels, msgs), count: action.counts[id] || 0 }) }));
  box.append(counts);
  const panel = el('div', { cls: 'action-status', attrs: { hidden: '' } });
  const tools = el('div', { cls: 'status-actions' });
  tools.append(button(msgs.see_answers, 'small secondary see-answers', () => handlers.actionStatus(item, labels, panel)));
  if (item.can_edit) tools.append(button(msgs.change_action, 'small secondary change-action', () => changeForm(item, body, box, ctx)));
  box.append(tools, panel);
  return box;
}

function localValue(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The teacher's "Change the deadline or places": a compatible change of the structure. */
function changeForm(item, body, box, ctx) {
  const { msgs, handlers } = ctx;
  if (box.querySelector('.change-form')) return;
  const action = item.action;
  const labels = body.action || {};
  const form = el('form', { cls: 'change-form' });
  const deadlineId = `deadline-${item.id}`;
  const deadline = el('input', { attrs: { type: 'datetime-local', id: deadlineId } });
  deadline.value = localValue(action.deadline);
  form.append(el('label', { text: msgs.deadline_label, attrs: { for: deadlineId } }), deadline);
  const places = new Map();
  if (action.type === 'signup') {
    for (const c of action.choices) {
      const id = `cap-${item.id}-${c.id}`;
      const input = el('input', { attrs: { type: 'number', min: String(Math.max(1, c.taken)), max: '10000', id, placeholder: msgs.places_any } });
      input.value = c.capacity ?? '';
      places.set(c.id, input);
      form.append(el('label', { text: `${choiceLabel(c.id, labels.labels, msgs)} — ${msgs.places}`, attrs: { for: id } }), input);
    }
  }
  const save = el('button', { cls: 'small', text: msgs.save_change, attrs: { type: 'submit' } });
  const cancel = button(msgs.cancel_change, 'small secondary', () => form.remove());
  const row = el('div', { cls: 'status-actions' });
  row.append(save, cancel);
  form.append(row);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const structure = {
      type: action.type,
      deadline: deadline.value ? new Date(deadline.value).toISOString().replace(/\.\d{3}Z$/, 'Z') : null,
      choices: action.choices.map((c) => ({ id: c.id, capacity: places.has(c.id) ? (places.get(c.id).value ? Number(places.get(c.id).value) : null) : c.capacity })),
    };
    if (action.type === 'event') Object.assign(structure, { starts_at: action.starts_at, ends_at: action.ends_at, all_day: action.all_day });
    if (action.type === 'poll') structure.multiple = action.multiple;
    if (action.type === 'event' && action.all_day) {
      structure.starts_at = action.starts_at.slice(0, 10);
      structure.ends_at = action.ends_at ? action.ends_at.slice(0, 10) : null;
    }
    handlers.editAction(item, body, structure);
  });
  box.append(form);
  deadline.focus();
}

// ------------------------------------------------------------------ teacher's status

/** Fill `panel` with every family's answer; slips' signatures are checked against the verified log. */
export async function renderStatus(item, labels, panel, { msgs, locale, cls }) {
  const status = await api(`/classes/${item.class_id}/posts/${item.id}/answers`);
  const rows = [];
  const list = el('ul', { cls: 'family-answers' });
  const waiting = el('ul', { cls: 'family-waiting' });
  for (const f of status.families) {
    const answer = f.choice ? f.choice.map((id) => choiceLabel(id, labels.labels, msgs)).join(', ') : '';
    rows.push([f.child, f.by || '', answer, f.answered_at || '']);
    if (!f.choice) {
      waiting.append(el('li', { text: `${f.child} — ${msgs.not_answered} (${f.guardians.join(', ')})` }));
      continue;
    }
    const li = el('li', { cls: 'answered' });
    li.append(el('strong', { text: f.child }), document.createTextNode(` — ${answer} · ${fill(msgs.by_on, { name: f.by || '', date: when(f.answered_at, locale) })}`));
    if (status.type === 'slip') {
      const ok = await slipVerifies(cls, status, f);
      li.append(el('span', { cls: ok ? 'signed ok' : 'signed bad', text: ok ? ` ✓ ${fill(msgs.signed_by, { name: f.by || '' })}` : ` ⚠ ${msgs.signature_bad}` }));
      // the signature covers the slip's text as it was: an edit since is worth knowing
      if (ok && f.post_version !== item.version) li.append(el('span', { cls: 'hint', text: ` (${msgs.signed_earlier})` }));
    }
    list.append(li);
  }
  const note = el('p', { cls: 'alert', attrs: { role: 'status', hidden: '' } });
  const remind = button(msgs.remind_unanswered, 'small', async () => {
    try {
      const { reminded } = await api(`/classes/${item.class_id}/posts/${item.id}/answers/remind`, {});
      note.textContent = reminded === 0 ? msgs.reminded_none_answers
        : reminded === 1 ? msgs.reminded_one_answers : fill(msgs.reminded_answers, { count: reminded });
    } catch (err) {
      note.textContent = errorText(err);
    }
    note.hidden = false;
  });
  const csv = button(msgs.export_csv, 'small secondary', () => downloadCsv(labels.title || item.id, rows, msgs));
  panel.replaceChildren(
    el('h4', { text: fill(msgs.answered_count, { answered: status.answered, total: status.total }) }),
    list,
    el('h4', { text: msgs.not_answered_title }),
    waiting.children.length ? waiting : el('p', { cls: 'hint', text: msgs.everyone_answered }),
    el('div', { cls: 'status-actions' }),
    note,
  );
  panel.querySelector('.status-actions').append(remind, csv);
  panel.hidden = false;
}

async function slipVerifies(cls, status, f) {
  const member = cls.state.members.get(f.by_member);
  if (!member || !f.signature) return false;
  const statement = {
    type: 'slip-answer', group: status.group, post: status.post, post_version: f.post_version,
    child: f.child_id, decision: f.choice[0], at: f.signed_at,
  };
  return verifyObject(b64urlDecode(member.signPk, { length: 32 }), SLIP_CONTEXT, statement, f.signature);
}

/**
 * A permission slip's answer, signed with this browser's identity key. `childId` is the
 * child's id on the class's node (`sign_child`: differs on a class of another school).
 */
export async function signSlip(keys, cls, item, childId, decision) {
  const at = Math.floor(Date.now() / 1000);
  const statement = {
    type: 'slip-answer', group: cls.state.group, post: item.id, post_version: item.version,
    child: childId, decision, at,
  };
  return { signature: await signObject(keys.sign, SLIP_CONTEXT, statement), at };
}
