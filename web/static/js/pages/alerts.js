// Emergency alerts (docs/protocol/e2e-groups.md §7), two pages:
// - /alerts (admins): set up the school's "all guardians" group on the first
//   visit, keep it current (add every guardian and named staff member the node
//   lists, remove who left with a new key) on load and again right before every
//   send, compose and send alerts, approve or cancel, the school's alert policy,
//   and who may send alerts (an `admins` entry and a new key, §2);
//   staff the admins named (teachers) get the composer and the list only: they
//   open the group as members, the admins' pages keep it current;
// - /alerts/<id>: the thread, decrypted and checked here (emergency-role
//   signer, signature, key, body) — never shown unverified; guardians say
//   "I have read this", admins send follow-ups and watch who it reached, live.

import * as G from '../e2e/groups.js';
import { loadAccountKeys } from '../e2e/keystore.js';
import { b64urlDecode, b64urlEncode, fingerprint } from '../e2e/suite.js';
import { api, errorText, keyStoreName, UserError } from './common.js';

const root = document.getElementById('alerts');
const msgs = JSON.parse(document.getElementById('alert-messages').textContent);
const locale = document.documentElement.lang || 'en';
const accountId = root.dataset.accountId;
// an admin account keeps the group current and changes the role; named staff only open it
const manages = root.dataset.manages === 'true' || root.dataset.role === 'admin';
const now = () => Math.floor(Date.now() / 1000);
const BATCH = 1000; // adds per request (the node takes up to 5000 entries)

let keys = null;

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
}

function fail(err) {
  const box = document.getElementById('alerts-error');
  box.textContent = errorText(err);
  box.hidden = false;
}

function formError(form, err) {
  const box = form.querySelector('.alert.error');
  box.textContent = err ? errorText(err) : '';
  box.hidden = !err;
}

function when(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------ the school group

// Trust on first use, per account and per group: the group's emergency-role keys
// and the newest head seen (a guardian may read alerts of a child's other school,
// encrypted to that school's group). The own school's group also keeps the
// per-account pin it always had: it says which group is the own school's, so
// the node cannot swap it for another one.
function ownPinKey() {
  return `carnet-pin|${location.origin}|${accountId}|school-group`;
}

function pinKey(groupId) {
  return `${ownPinKey()}|${groupId}`;
}

function readPin(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || 'null');
  } catch {
    return null;
  }
}

/** The pin of `groupId`, or of the own school's group saved before pins were per group. */
function loadPin(groupId, own) {
  const pin = readPin(pinKey(groupId));
  if (pin) return pin;
  const legacy = own ? readPin(ownPinKey()) : null;
  return legacy && legacy.group === groupId ? legacy : null;
}

// The pinned admins are those in force at the pinned head (verifyLog accepts the
// create's admins or, with the head, those at that head), so a change of the
// emergency role after the pin still verifies, and a log rewritten to hand the
// role to other keys does not.
function savePin(state, own) {
  const pin = JSON.stringify({ group: state.group, admins: [...state.admins], head: [state.headSeq, state.headHash] });
  localStorage.setItem(pinKey(state.group), pin);
  if (own) localStorage.setItem(ownPinKey(), pin);
}

/**
 * A group as this browser verified it: {view, state, epochKeys, me}; state null if none yet.
 * `groupId`: the group an alert says it is encrypted to (null: the own school's);
 * `own`: it is this node's school's group (false for an alert of another school).
 */
async function openGroup(groupId = null, own = true) {
  const view = await api(groupId ? `/school-group?group=${encodeURIComponent(groupId)}` : '/school-group');
  if (groupId && view.group_id !== null && view.group_id !== groupId) throw new UserError(msgs.log_refused);
  if (view.group_id === null || !view.entries.length) return { view, state: null, epochKeys: new Map(), me: view.me };
  if (own) {
    const ownPin = readPin(ownPinKey());
    if (ownPin && ownPin.group !== view.group_id) throw new UserError(msgs.log_refused);
  }
  const pin = loadPin(view.group_id, own);
  let state;
  try {
    state = await G.verifyLog(view.entries, { pinnedAdmins: pin ? pin.admins : null, knownHead: pin ? pin.head : null });
  } catch (err) {
    throw new UserError(`${msgs.log_refused} (${err.message})`);
  }
  if (state.group !== view.group_id || state.history !== 'from_join') throw new UserError(msgs.log_refused);
  savePin(state, own);
  const epochKeys = new Map();
  for (const envelope of [...view.envelopes].sort((a, b) => b.epoch - a.epoch)) {
    if (epochKeys.has(envelope.epoch)) continue;
    const commit = state.epochs[envelope.epoch]?.commit;
    if (!commit) continue;
    try {
      const key = await G.openEpochKey(state.group, envelope, view.me, keys.enc, keys.encPk, commit);
      for (const [epoch, k] of await G.epochKeysFrom(state, envelope.epoch, key)) epochKeys.set(epoch, k);
    } catch (err) {
      console.warn('an alert key envelope did not open', err);
    }
  }
  return { view, state, epochKeys, me: view.me };
}

/** True if this browser's keys are one of the group's emergency-role admins (may send). */
function canSend(grp) {
  if (!grp.state) return false;
  const mine = grp.state.members.get(grp.me);
  const signPk = b64urlEncode(keys.signPk);
  return Boolean(mine && mine.active && mine.role === 'admin' && mine.signPk === signPk && grp.state.admins.includes(signPk));
}

async function signed(log, group, op, body) {
  const prev = log.length ? await G.entryHash(log[log.length - 1]) : null;
  const entry = await G.makeEntry(keys.sign, keys.signPk, group, log.length, prev, op, body, now());
  log.push(entry);
  return entry;
}

/** First visit of an admin: create (this admin's key as the emergency role), add self as admin, epoch 0. */
async function setupGroup(view) {
  const group = G.newGroupId();
  const key = G.newEpochKey();
  const log = [];
  await signed(log, group, 'create', G.createBody([keys.signPk], 'from_join'));
  await signed(log, group, 'add', G.addBody(view.me, 'admin', keys.signPk, keys.encPk));
  await signed(log, group, 'rotate', await G.rotateBody(group, 0, key, [view.me], null));
  const envelope = await G.sealEpochKey(group, 0, key, view.me, keys.encPk);
  await api('/school-group', { entries: log, envelopes: [envelope] });
}

/** `add` every candidate with its role and seal the current epoch key to each, in batches. */
async function addMembers(grp, candidates) {
  const epoch = grp.state.currentEpoch;
  const key = grp.epochKeys.get(epoch.epoch);
  if (!key) throw new UserError(msgs.log_refused);
  const log = [...grp.view.entries];
  for (let start = 0; start < candidates.length; start += BATCH) {
    const entries = [];
    const envelopes = [];
    for (const c of candidates.slice(start, start + BATCH)) {
      const encPk = b64urlDecode(c.enc_pk, { length: 32 });
      const body = G.addBody(c.member, c.role, b64urlDecode(c.sign_pk, { length: 32 }), encPk);
      entries.push(await signed(log, grp.state.group, 'add', body));
      envelopes.push(await G.sealEpochKey(grp.state.group, epoch.epoch, key, c.member, encPk));
    }
    await api('/school-group/entries', { entries, envelopes });
  }
}

/** `remove` who left, then a new key (a cut: §7) sealed to everyone left. */
async function removeAndRotate(grp, members) {
  const log = [...grp.view.entries];
  const fresh = [];
  for (const member of members) fresh.push(await signed(log, grp.state.group, 'remove', G.removeBody(member)));
  const after = await G.verifyLog(log);
  const number = after.epochs.length;
  const key = G.newEpochKey();
  const to = after.activeMembers();
  fresh.push(await signed(log, after.group, 'rotate', await G.rotateBody(after.group, number, key, to, null)));
  const envelopes = [];
  for (const member of to) {
    const encPk = b64urlDecode(after.members.get(member).encPk, { length: 32 });
    envelopes.push(await G.sealEpochKey(after.group, number, key, member, encPk));
  }
  await api('/school-group/entries', { entries: fresh, envelopes });
}

/**
 * Admins: set up the group if needed, then add and remove who the node lists → the group, verified.
 * Named staff only open it (the node takes entries from admins only).
 */
async function syncGroup(say = () => {}) {
  let grp = await openGroup();
  if (!manages) return grp;
  if (grp.view.group_id === null) {
    say(msgs.syncing);
    await setupGroup(grp.view);
    grp = await openGroup();
  }
  if (!canSend(grp)) return grp;
  if (grp.view.add.length) {
    say(msgs.syncing);
    await addMembers(grp, grp.view.add);
    grp = await openGroup();
  }
  // a removal or an admin change left waiting for its key (a page closed midway): rotate now
  if (grp.view.remove.length || grp.state.pending) {
    await removeAndRotate(grp, grp.view.remove);
    grp = await openGroup();
  }
  return grp;
}

function guardianCount(grp) {
  if (!grp.state) return 0;
  return [...grp.state.members.values()].filter((m) => m.active && m.role === 'guardian').length;
}

async function showGroup(grp) {
  const count = guardianCount(grp);
  const line = document.getElementById('group-count');
  line.textContent = count === 1 ? msgs.guardians_one : fill(msgs.guardians, { n: count });
  line.hidden = !grp.state;
  const box = document.getElementById('group-keys');
  const prints = box.querySelector('.fingerprints');
  prints.replaceChildren();
  for (const admin of grp.state ? grp.state.admins : []) {
    prints.append(el('code', 'fingerprint block', await fingerprint(b64urlDecode(admin, { length: 32 }))));
  }
  box.hidden = !grp.state;
}

// ------------------------------------------------------------ reading a thread

/** Each message → {item, body} or {item, body: null} when it fails any check. */
async function openThread(grp, alert) {
  const out = [];
  for (const [index, item] of alert.messages.entries()) {
    let body = null;
    try {
      const header = item.message?.header;
      const parent = index === 0 ? null : alert.id;
      if (!grp.state || !header || header.id !== item.id || header.parent !== parent || (index === 0 && header.id !== alert.id)) {
        throw new Error('this message does not belong here');
      }
      body = await G.decryptAlert({ message: item.message }, grp.state, grp.epochKeys);
    } catch (err) {
      console.warn('an alert failed its checks', err);
    }
    out.push({ item, body });
  }
  return out;
}

function drillLabel() {
  return el('span', 'drill-label', msgs.drill);
}

function titleOf(template, school) {
  const title = msgs.titles[template] || template;
  return school ? fill(msgs.school_title, { school, title }) : title;
}

function renderThread(opened, school = null) {
  const box = document.getElementById('thread');
  box.replaceChildren();
  // newest first: the latest instructions are what matters
  for (const { item, body } of [...opened].reverse()) {
    const article = el('article', 'alert-message');
    article.id = `m-${item.id}`;
    if (!body) {
      article.classList.add('unverified');
      article.append(el('p', 'alert-unverified', msgs.unverified));
      box.append(article);
      continue;
    }
    if (body.template === 'all_clear') article.classList.add('all-clear');
    if (body.drill) article.classList.add('drill');
    const head = el('header', 'alert-head');
    if (body.drill) head.append(drillLabel());
    head.append(el('h2', 'alert-title', titleOf(body.template, school)));
    const time = el('time', 'alert-time', when(item.at));
    time.dateTime = item.at;
    head.append(time);
    article.append(head);
    if (msgs.wordings[body.template]) article.append(el('p', 'alert-wording', msgs.wordings[body.template]));
    if (body.text) article.append(el('p', 'alert-text', body.text));
    box.append(article);
  }
}

// ------------------------------------------------------------ the admins' page

/** → {message}; encryptAlert refuses a body or a signer guardians would refuse. */
function sendAlert(grp, { template, text, drill, parent = null }) {
  return G.encryptAlert(keys, grp.me, grp.state, grp.epochKeys, { template, text, drill, parent });
}

function adminPage() {
  const composer = document.getElementById('alert-composer');
  const templateSelect = document.getElementById('alert-template');
  const textArea = document.getElementById('alert-text');
  const drillBox = document.getElementById('alert-drill');
  const smsBox = document.getElementById('sms-box');
  const smsArea = document.getElementById('alert-sms');
  const confirmStep = document.getElementById('alert-confirm');
  const status = document.getElementById('group-status');
  const say = (text) => { status.textContent = text; };
  let grp = null;
  let twoPerson = root.dataset.twoPerson === 'true';
  let lastSuggested = '';

  function prefill() {
    const template = templateSelect.value;
    document.getElementById('template-wording').textContent = msgs.wordings[template] || msgs.titles.free;
    // replace the text only if the admin has not written their own
    if (!textArea.value.trim() || textArea.value === lastSuggested) {
      textArea.value = msgs.suggested[template] || '';
      lastSuggested = textArea.value;
    }
  }

  async function refreshGroup() {
    say(msgs.opening);
    grp = await syncGroup(say);
    await showGroup(grp);
    await showRole(grp);
    if (grp.state && canSend(grp)) {
      composer.hidden = false;
      say(msgs.ready);
    } else {
      composer.hidden = true;
      const named = !grp.state || grp.state.admins.includes(b64urlEncode(keys.signPk));
      say(grp.view.group_id === null ? msgs.not_set_up : named ? msgs.not_added : msgs.not_member);
    }
  }

  // ---- who may send alerts (admins): an `admins` entry and a new key, then the usual sync
  const roleForm = document.getElementById('role-form');
  const roleList = document.getElementById('role-list');
  const roleStatus = document.getElementById('role-status');

  /** The staff the node lists, ticked as the verified log has them (not as the node says). */
  async function showRole(current) {
    if (!roleForm) return;
    const staff = current.view.staff || [];
    roleForm.hidden = !current.state || !staff.length || !canSend(current);
    if (roleForm.hidden) return;
    const inRole = new Set(current.state.admins);
    const mine = b64urlEncode(keys.signPk);
    const order = (p) => `${p.role === 'admin' ? 0 : 1}${p.name.toLocaleLowerCase(locale)}`;
    const rows = [];
    for (const person of [...staff].sort((a, b) => order(a).localeCompare(order(b), locale))) {
      const li = el('li', 'role-person');
      const label = el('label', 'check');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.name = 'admins';
      box.value = person.sign_pk;
      box.dataset.role = person.role;
      box.dataset.accountId = String(person.account_id);
      box.checked = inRole.has(person.sign_pk);
      // the page signs the change and then adds who it names: its own key stays in the role
      if (person.sign_pk === mine && box.checked) box.disabled = true;
      const text = el('span', 'role-person-text');
      const name = el('strong', 'role-person-name', person.name);
      text.append(name, ' ', el('span', `badge badge-role-${person.role}`, person.role === 'admin' ? msgs.role_admin : msgs.role_teacher));
      if (person.sign_pk === mine) text.append(' ', el('span', 'hint', `(${msgs.role_you})`));
      const print = el('code', 'fingerprint block', await fingerprint(b64urlDecode(person.sign_pk, { length: 32 })));
      text.append(print);
      label.append(box, text);
      li.append(label);
      rows.push(li);
    }
    roleList.replaceChildren(...rows);
    document.getElementById('role-self-hint').hidden = !roleList.querySelector('input:disabled');
  }

  roleList?.addEventListener('change', () => {
    roleStatus.textContent = '';
    formError(roleForm, null);
  });

  roleForm?.addEventListener('submit', async (event) => {
    event.preventDefault();
    formError(roleForm, null);
    roleStatus.textContent = '';
    const chosen = [...roleList.querySelectorAll('input[type=checkbox]')].filter((b) => b.checked);
    if (!chosen.some((b) => b.dataset.role === 'admin')) {
      formError(roleForm, new UserError(msgs.role_need_admin));
      return;
    }
    const wanted = chosen.map((b) => b.value);
    const buttons = document.querySelectorAll('#alerts button');
    for (const b of buttons) b.disabled = true;
    roleForm.setAttribute('aria-busy', 'true');
    try {
      grp = await syncGroup(say);
      if (!canSend(grp)) throw new UserError(msgs.not_member);
      const same = wanted.length === grp.state.admins.length && wanted.every((k) => grp.state.admins.includes(k));
      if (same) {
        roleStatus.textContent = msgs.role_unchanged;
        return;
      }
      roleStatus.textContent = msgs.role_saving;
      const newAdmins = wanted.map((k) => b64urlDecode(k, { length: 32 }));
      // a new key (a cut sealed to every member): what the dropped keys held signs nothing new
      const { entries, envelopes } = await G.changeAdmins(keys, grp.state, newAdmins, { epochKey: G.newEpochKey(), at: now() });
      await api('/school-group/entries', { entries, envelopes });
      grp = await syncGroup(say); // adds who was named (role admin), removes who was taken out
      await showGroup(grp);
      composer.hidden = !canSend(grp);
      say(msgs.ready);
      roleStatus.textContent = msgs.role_saved;
    } catch (err) {
      roleStatus.textContent = '';
      formError(roleForm, err);
    } finally {
      for (const b of buttons) b.disabled = false;
      roleForm.setAttribute('aria-busy', 'false');
      if (grp) await showRole(grp).catch(fail);
    }
  });

  function resetConfirm() {
    confirmStep.hidden = true;
    document.getElementById('alert-send').hidden = false;
  }

  templateSelect.addEventListener('change', prefill);
  for (const input of [templateSelect, textArea, drillBox, smsArea]) input.addEventListener('input', resetConfirm);
  document.getElementById('alert-confirm-back').addEventListener('click', resetConfirm);

  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    formError(composer, null);
    const text = textArea.value.trim();
    if (templateSelect.value === 'free' && !text) {
      formError(composer, new UserError(msgs.need_text));
      textArea.focus();
      return;
    }
    const n = guardianCount(grp);
    let question = fill(drillBox.checked ? msgs.confirm_drill : msgs.confirm, { n });
    if (twoPerson && !drillBox.checked) question += ` ${msgs.confirm_two_person}`;
    document.getElementById('confirm-text').textContent = question;
    document.getElementById('alert-send').hidden = true;
    confirmStep.hidden = false;
    document.getElementById('alert-confirm-send').focus();
  });

  document.getElementById('alert-confirm-send').addEventListener('click', async () => {
    const buttons = composer.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    composer.setAttribute('aria-busy', 'true');
    try {
      grp = await syncGroup(say); // a guardian approved this morning gets this afternoon's alert
      await showGroup(grp);
      const drill = drillBox.checked;
      const template = templateSelect.value;
      const { message } = await sendAlert(grp, { template, text: textArea.value.trim(), drill });
      const sms = smsBox.hidden || !smsArea.value.trim() ? null : smsArea.value.trim();
      const sent = await api('/alerts', { message, template, drill, sms_text: sms });
      composer.reset();
      lastSuggested = '';
      prefill();
      resetConfirm();
      say(sent.state === 'awaiting_approval' ? msgs.awaiting : fill(msgs.sent, { n: sent.recipients }));
      if (sent.state === 'active') location.assign(`/alerts/${sent.alert}`);
      else await loadList();
    } catch (err) {
      formError(composer, err);
    } finally {
      for (const b of buttons) b.disabled = false;
      composer.setAttribute('aria-busy', 'false');
    }
  });

  async function act(alert, action) {
    if (action === 'cancel' && !window.confirm(msgs.confirm_cancel)) return;
    try {
      await api(`/alerts/${alert.id}/${action}`, {});
      await loadList();
    } catch (err) {
      fail(err);
    }
  }

  async function loadList() {
    const { alerts } = await api('/alerts');
    const list = document.getElementById('alert-list');
    list.replaceChildren();
    document.getElementById('alert-list-empty').hidden = alerts.length > 0;
    for (const alert of alerts) {
      const li = el('li', `alert-row state-${alert.state}`);
      li.dataset.alertId = alert.id;
      const line = el('div', 'alert-row-head');
      if (alert.drill) line.append(drillLabel());
      const link = el('a', 'alert-row-title', titleOf(alert.template, alert.school));
      link.href = `/alerts/${alert.id}`;
      line.append(link, el('span', `badge badge-alert-${alert.state}`, msgs.states[alert.state] || alert.state));
      const meta = el('p', 'hint alert-row-meta', [when(alert.sent_at || alert.created_at), alert.sent_by ? fill(msgs.by, { name: alert.sent_by }) : ''].filter(Boolean).join(' · '));
      li.append(line, meta);
      if (alert.state === 'awaiting_approval') {
        const actions = el('div', 'actions-row');
        if (alert.can_approve) {
          const approve = el('button', 'danger-solid small approve', msgs.approve);
          approve.type = 'button';
          approve.addEventListener('click', () => act(alert, 'approve'));
          actions.append(approve);
        }
        if (manages) {
          const cancel = el('button', 'secondary small cancel', msgs.cancel);
          cancel.type = 'button';
          cancel.addEventListener('click', () => act(alert, 'cancel'));
          actions.append(cancel);
        }
        if (actions.childElementCount) li.append(actions);
      }
      list.append(li);
    }
  }

  const policyForm = document.getElementById('policy-form'); // admins only
  policyForm?.addEventListener('submit', async (event) => {
    event.preventDefault();
    formError(policyForm, null);
    const policyStatus = document.getElementById('policy-status');
    policyStatus.textContent = '';
    const delay = Number(document.getElementById('policy-delay').value);
    if (!Number.isInteger(delay) || delay < 30 || delay > 3600) {
      formError(policyForm, new UserError(msgs.delay_range));
      document.getElementById('policy-delay').focus();
      return;
    }
    try {
      const saved = await api('/alerts/policy', {
        sms_delay_seconds: delay,
        sms_with_text: document.getElementById('policy-sms-text').checked,
        two_person: document.getElementById('policy-two-person').checked,
      }, { method: 'PUT' });
      smsBox.hidden = !saved.sms_with_text;
      twoPerson = saved.two_person;
      document.getElementById('policy-delay').value = saved.sms_delay_seconds;
      policyStatus.textContent = msgs.saved;
    } catch (err) {
      formError(policyForm, err);
    }
  });

  document.addEventListener('carnet:live', (event) => {
    const detail = event.detail || {};
    if (detail.type !== 'alert_update' && detail.type !== 'alert') return;
    event.preventDefault();
    loadList().catch(fail);
  });

  prefill();
  const group = keys ? refreshGroup() : Promise.reject(new UserError(msgs.no_keys));
  return Promise.all([group, loadList()]); // without keys: the list, approvals and the policy still work
}

// ------------------------------------------------------------ one alert

function reachBadge(state) {
  return el('span', `badge badge-reach-${state}`, msgs.reach[state] || state);
}

function renderReach(reach) {
  const set = (id, value) => { document.getElementById(id).textContent = value; };
  set('reach-acknowledged', fill(msgs.reached_of, { n: reach.acknowledged, total: reach.guardians }));
  set('reach-delivered', String(reach.delivered));
  set('reach-texted', String(reach.texted));
  set('reach-not-reached', String(reach.not_reached));
  document.getElementById('reach-not-reached').classList.toggle('some', reach.not_reached > 0);
  set('reach-children', fill(msgs.reached_of, { n: reach.children_reached, total: reach.children }));
  set('reach-updated', fill(msgs.updated, { time: new Date().toLocaleTimeString(locale) }));
  const box = document.getElementById('reach-classes');
  const template = document.getElementById('reach-class');
  box.replaceChildren();
  if (!reach.classes.length) box.append(el('p', 'hint', msgs.no_family));
  for (const klass of reach.classes) {
    const section = template.content.firstElementChild.cloneNode(true);
    section.querySelector('.class-name').textContent = klass.name;
    section.querySelector('.class-count').textContent = fill(msgs.class_reached, { n: klass.reached, total: klass.children.length });
    const body = section.querySelector('tbody');
    for (const child of klass.children) {
      const row = document.createElement('tr');
      row.className = child.reached ? 'reached' : 'not-reached';
      const name = el('td', 'child-name');
      name.dataset.label = section.querySelector('th').textContent;
      const mark = el('span', 'reach-mark', child.reached ? '✓ ' : '○ ');
      mark.setAttribute('aria-hidden', 'true'); // the guardians' states say it in words
      name.append(mark, child.name);
      const people = el('td', 'child-guardians');
      people.dataset.label = section.querySelectorAll('th')[1].textContent;
      const list = el('ul', 'reach-guardians');
      for (const g of child.guardians) {
        const li = el('li', `reach-${g.state}`);
        li.append(el('span', 'guardian-name', g.name), ' ', reachBadge(g.state));
        list.append(li);
      }
      if (!child.guardians.length) list.append(el('li', 'reach-not_reached', msgs.reach.not_reached));
      people.append(list);
      row.append(name, people);
      body.append(row);
    }
    box.append(section);
  }
  document.getElementById('reach').hidden = false;
}

/** Seconds → "45 s", "2 min 05 s"; null → "not yet". */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return msgs.not_yet;
  const whole = Math.round(seconds);
  if (whole < 60) return fill(msgs.seconds, { n: whole });
  return fill(msgs.minutes, { m: Math.floor(whole / 60), s: String(whole % 60).padStart(2, '0') });
}

function renderTiming(timing) {
  const box = document.getElementById('timing');
  if (!timing) return;
  const set = (id, value) => {
    const cell = document.getElementById(id);
    cell.textContent = value;
    cell.classList.toggle('not-yet', value === msgs.not_yet);
  };
  set('timing-recipients', String(timing.recipients));
  set('timing-delivered', fill(msgs.reached_of, { n: timing.delivered, total: timing.recipients }));
  set('timing-acknowledged', fill(msgs.reached_of, { n: timing.acknowledged, total: timing.recipients }));
  set('timing-first-ack', duration(timing.first_ack));
  set('timing-median-ack', duration(timing.median_ack));
  set('timing-p90-ack', duration(timing.p90_ack));
  set('timing-last-ack', duration(timing.last_ack));
  set('timing-p90-delivered', duration(timing.p90_delivered));
  set('timing-texts', String(timing.texts));
  box.hidden = false;
}

/** Guardians: the fingerprints of the keys that signed what they read (to compare with the school's). */
async function showSigner(opened) {
  const box = document.getElementById('alert-signer');
  if (!box) return;
  const signers = [...new Set(opened.filter((o) => o.body).map((o) => o.item.message.header.by))];
  const prints = box.querySelector('.fingerprints');
  prints.replaceChildren();
  for (const signer of signers) {
    prints.append(el('code', 'fingerprint block', await fingerprint(b64urlDecode(signer, { length: 32 }))));
  }
  box.hidden = !signers.length;
}

function alertPage() {
  const alertId = root.dataset.alertId;
  const isAdmin = root.dataset.sender === 'true'; // admins and named staff: follow-ups, dashboard
  const status = document.getElementById('alert-status');
  let grp = null;
  let alert = null;
  let threadDrill = false; // what the first verified message says

  // the group the alert is encrypted to: the own school's, or (a guardian) a child's other school's
  async function groupFor(found) {
    if (isAdmin) return syncGroup();
    return openGroup(found.group || null, !found.school);
  }

  async function loadThread() {
    alert = await api(`/alerts/${alertId}`);
    if (!grp || (alert.group && grp.view.group_id !== alert.group)) grp = await groupFor(alert);
    let opened = await openThread(grp, alert);
    if (opened.some((o) => !o.body)) {
      // a message under a key this page has not opened yet (the group changed since): once more
      grp = await groupFor(alert);
      opened = await openThread(grp, alert);
    }
    renderThread(opened, alert.school);
    if (!isAdmin) await showSigner(opened);
    const verified = opened.filter((o) => o.body);
    threadDrill = verified.length ? verified[0].body.drill : alert.drill;
    status.textContent = alert.state === 'closed' ? msgs.ended : '';
    status.hidden = !status.textContent;
    if (!isAdmin) {
      const acked = Boolean(alert.acknowledged_at) || document.getElementById('ack-done').hidden === false;
      document.getElementById('ack-box').hidden = !verified.length;
      document.getElementById('ack').hidden = acked;
      document.getElementById('ack-done').hidden = !acked;
    } else {
      const form = document.getElementById('follow-up');
      form.hidden = alert.state !== 'active' || !canSend(grp);
    }
  }

  async function loadReach() {
    const reach = await api(`/alerts/${alertId}/reach`);
    renderReach(reach);
    renderTiming(reach.timing);
  }

  if (!isAdmin) {
    document.getElementById('ack').addEventListener('click', async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await api(`/alerts/${alertId}/ack`, {});
        button.hidden = true;
        document.getElementById('ack-done').hidden = false;
      } catch (err) {
        fail(err);
      } finally {
        button.disabled = false;
      }
    });
  } else {
    const form = document.getElementById('follow-up');
    const templateSelect = document.getElementById('follow-template');
    const textArea = document.getElementById('follow-text');

    async function followUp(template, text) {
      formError(form, null);
      const buttons = form.querySelectorAll('button');
      for (const b of buttons) b.disabled = true;
      try {
        grp = await syncGroup();
        if (alert.group && grp.state && grp.state.group !== alert.group) throw new UserError(msgs.log_refused);
        const { message } = await sendAlert(grp, { template, text, drill: threadDrill, parent: alertId });
        await api(`/alerts/${alertId}/messages`, { message, template });
        form.reset();
        status.hidden = false;
        status.textContent = msgs.follow_up_sent;
        await Promise.all([loadThread(), loadReach()]);
      } catch (err) {
        formError(form, err);
      } finally {
        for (const b of buttons) b.disabled = false;
      }
    }

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = textArea.value.trim();
      if (!text) {
        formError(form, new UserError(msgs.need_text));
        textArea.focus();
        return;
      }
      followUp(templateSelect.value, text);
    });
    document.getElementById('all-clear').addEventListener('click', () => {
      if (!window.confirm(msgs.confirm_all_clear)) return;
      followUp('all_clear', textArea.value.trim() || msgs.suggested.all_clear);
    });
    // the dashboard stays current: live events, and every 10 s in case one was missed
    setInterval(() => { if (!document.hidden) loadReach().catch(() => {}); }, 10000);
  }

  document.addEventListener('carnet:live', (event) => {
    const detail = event.detail || {};
    if ((detail.type !== 'alert' && detail.type !== 'alert_update') || detail.alert !== alertId) return;
    event.preventDefault();
    const work = [loadThread()];
    if (isAdmin) work.push(loadReach());
    Promise.all(work).catch(fail);
  });

  return (async () => {
    await loadThread();
    if (isAdmin) await loadReach();
  })();
}

// ------------------------------------------------------------ start

async function start() {
  keys = await loadAccountKeys(keyStoreName(accountId)).catch(() => null);
  if (root.dataset.page === 'admin') return adminPage();
  if (!keys) throw new UserError(msgs.no_keys);
  return alertPage();
}

start()
  .catch((err) => {
    fail(err);
    const status = document.getElementById('group-status') || document.getElementById('alert-status');
    if (status) status.textContent = '';
  })
  .finally(() => root.setAttribute('aria-busy', 'false'));
