// A class's conversations: the parents' room, private groups and family
// threads (docs/protocol/e2e-groups.md §9). Everything is encrypted and
// decrypted here with this browser's keys. Before sealing a message, the
// page checks that the people the node names are the ones the conversation's
// signed membership chain let in, and that each is an approved member of the
// class (keys signed by the teacher): a node cannot add a reader by itself.

import { loadAccountKeys } from '../e2e/keystore.js';
import { recipients as checkedRecipients, verifyChain as checkChain } from '../feed/chatcheck.js';
import * as G from '../e2e/groups.js';
import { b64urlDecode, b64urlEncode } from '../e2e/suite.js';
import * as K from '../feed/classkeys.js';
import { fill } from '../feed/render.js';
import { api, errorText, keyStoreName, showError, UserError } from './common.js';

const root = document.getElementById('chat');
const msgs = JSON.parse(document.getElementById('chat-messages').textContent);
const classId = Number(root.dataset.classId);
const mode = root.dataset.mode;
const isTeacher = root.dataset.teacher === 'true';
const locale = document.documentElement.lang || 'en';
const status = document.getElementById('chat-status');

let keys = null;
let cls = null;
let overview = null;
let names = new Map(); // member id → display name
let current = null; // the open conversation's page
let olderAt = null; // the cursor of the messages before those shown

const say = (text) => { status.textContent = text; };
const base = `/classes/${classId}`;

function fail(err) {
  const box = document.getElementById('chat-error');
  box.textContent = errorText(err);
  box.hidden = false;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

const nameOf = (member) => (member === cls.me ? msgs.you : names.get(member) || member.split('@')[0]);
const sameList = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const verifyChain = (summary, chain) => checkChain(cls, summary, chain, msgs);
const recipients = (page) => checkedRecipients(cls, page, msgs);
const sorted = (items) => [...new Set(items)].sort();

// ------------------------------------------------------------------ titles and list

async function titleOf(summary) {
  if (summary.kind === 'room') return msgs.room;
  if (summary.kind === 'family') return fill(msgs.family, { child: summary.child_name || '' });
  if (!summary.key) return msgs.group;
  const opened = await K.decryptItem(cls, summary, keys, { id: summary.id, kind: 'conversation', parent: null });
  const title = opened.body && typeof opened.body.title === 'string' ? opened.body.title.trim() : '';
  return title || summary.members.filter((m) => m !== cls.me).map(nameOf).join(', ') || msgs.group;
}

async function renderList() {
  const list = document.getElementById('conversation-list');
  list.replaceChildren();
  const shown = overview.conversations.filter((c) => c.joined);
  document.getElementById('list-empty').hidden = shown.length > 0;
  for (const summary of shown) {
    const link = el('a', { href: `${base}/chat/${summary.id}`, textContent: await titleOf(summary) });
    if (summary.id === root.dataset.conversation) link.setAttribute('aria-current', 'page');
    list.append(el('li', { className: `conversation-${summary.kind}` }, link));
  }
}

// ------------------------------------------------------------------ starting conversations

async function sealed(kind, body, to, parent = null) {
  return K.encryptFor(cls, keys, kind, body, { to: sorted(to), parent });
}

function personLabel(person) {
  if (person.role === 'teacher') return `${person.name} (${msgs.teacher})`;
  return person.children.length ? `${person.name} (${fill(msgs.children_of, { names: person.children.join(', ') })})` : person.name;
}

function renderStart() {
  const start = document.getElementById('start');
  start.hidden = false;
  const settings = overview.settings;
  const familyForm = document.getElementById('family-form');
  const existing = new Set(overview.conversations.filter((c) => c.kind === 'family').map((c) => c.child_id));
  const select = document.getElementById('family-child');
  for (const option of [...select.options]) if (existing.has(Number(option.value))) option.remove();
  familyForm.hidden = select.options.length === 0 || (!isTeacher && settings.family_threads !== 'open');
  familyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    openFamily(familyForm, Number(select.value)).catch((err) => showError(familyForm, errorText(err)));
  });
  const chatOpen = settings.parent_chat === 'open' && !isTeacher && overview.conduct_accepted;
  const room = overview.conversations.find((c) => c.kind === 'room');
  const roomCard = document.getElementById('room-card');
  roomCard.hidden = !chatOpen || Boolean(room && room.joined);
  const roomButton = document.getElementById('room-button');
  roomButton.textContent = room ? msgs.join_room : msgs.open_room;
  roomButton.addEventListener('click', () => joinRoom(room).catch(fail));
  const groupForm = document.getElementById('group-form');
  groupForm.hidden = !chatOpen;
  const box = document.getElementById('group-people');
  const blocked = new Set(overview.blocked);
  for (const person of overview.people) {
    if (person.member === cls.me || person.role === 'teacher' || blocked.has(person.member)) continue;
    const input = el('input', { type: 'checkbox', name: 'member', value: person.member });
    box.append(el('label', { className: 'choice' }, input, ` ${personLabel(person)}`));
  }
  groupForm.addEventListener('submit', (event) => {
    event.preventDefault();
    createGroup(groupForm).catch((err) => showError(groupForm, errorText(err)));
  });
  renderBlocked();
}

async function openFamily(form, childId) {
  // the teacher and the child's approved guardians, as the node names them; each must be
  // an approved member of the class in the verified log
  const active = new Set(cls.state.activeMembers());
  const named = overview.family_members[String(childId)] || [];
  const to = named.filter((m) => active.has(m));
  if (to.length < 2) throw new UserError(msgs.no_guardian);
  const request = await sealed('conversation', { title: '' }, to);
  const { id } = await api(`${base}/conversations`, { kind: 'family', child: childId, ...request });
  location.assign(`${base}/chat/${id}`);
}

async function joinRoom(room) {
  if (!room) {
    const request = await sealed('conversation', { title: '' }, [cls.me]);
    const { id } = await api(`${base}/conversations`, { kind: 'room', ...request });
    location.assign(`${base}/chat/${id}`);
    return;
  }
  // the joiner cannot read the room's chain yet: the members as the node names them, each an
  // approved member of the class; the members check the chain when they next write
  const active = new Set(cls.state.activeMembers());
  const to = sorted([...room.members.filter((m) => active.has(m)), cls.me]);
  const request = await sealed('member', { op: 'join', member: cls.me }, to, room.id);
  await api(`${base}/conversations/${room.id}/members`, { op: 'join', member: cls.me, ...request });
  location.assign(`${base}/chat/${room.id}`);
}

async function createGroup(form) {
  const chosen = [...form.querySelectorAll('input[name="member"]:checked')].map((i) => i.value);
  if (!chosen.length) throw new UserError(msgs.choose_people);
  const title = form.querySelector('#group-name').value.trim();
  const request = await sealed('conversation', { title }, [cls.me, ...chosen]);
  const { id } = await api(`${base}/conversations`, { kind: 'group', members: chosen, ...request });
  location.assign(`${base}/chat/${id}`);
}

function renderBlocked() {
  const card = document.getElementById('blocked-card');
  const list = document.getElementById('blocked-list');
  list.replaceChildren();
  card.hidden = overview.blocked.length === 0;
  for (const member of overview.blocked) {
    const button = el('button', { type: 'button', className: 'secondary small', textContent: msgs.unblock });
    button.addEventListener('click', async () => {
      await api(`${base}/chat/blocks`, { member, blocked: false }, { method: 'PUT' }).catch(fail);
      location.reload();
    });
    list.append(el('li', {}, `${nameOf(member)} `, button));
  }
}

// ------------------------------------------------------------------ one conversation

/** event id → "X joined", "X added Y", "X left", replaying the chain as verifyChain does. */
function membershipLines(chain) {
  const lines = new Map();
  const members = new Set(chain[0].header.to);
  for (const event of chain.slice(1)) {
    const { author, to, id } = event.header;
    const added = to.filter((m) => !members.has(m));
    if (added.length === 1 && added[0] === author) {
      lines.set(id, fill(msgs.joined, { name: nameOf(author) }));
    } else if (added.length === 1) {
      lines.set(id, fill(msgs.added, { name: nameOf(author), other: nameOf(added[0]) }));
    } else {
      lines.set(id, fill(msgs.left, { name: nameOf(author) }));
      members.delete(author);
    }
    for (const m of added) members.add(m);
  }
  return lines;
}

function timeText(iso) {
  return new Date(iso).toLocaleString(locale, { dateStyle: 'short', timeStyle: 'short' });
}

async function renderMessage(item, lines) {
  if (item.kind === 'member') {
    return el('li', { className: 'message system', id: `m-${item.id}` }, lines.get(item.id) || '');
  }
  const li = el('li', { className: `message${item.author === cls.me ? ' mine' : ''}`, id: `m-${item.id}` });
  const head = el('p', { className: 'message-head' },
    el('strong', { textContent: item.author_name || nameOf(item.author) }), ' · ',
    el('time', { dateTime: item.created_at, textContent: timeText(item.created_at) }));
  li.append(head);
  const opened = await K.decryptItem(cls, item, keys, { id: item.id, kind: 'chat', parent: current.conversation.id });
  if (opened.body && typeof opened.body.text === 'string') {
    if (opened.body.text) li.append(el('p', { className: 'message-text', textContent: opened.body.text }));
    if (typeof opened.body.post === 'string' && /^[A-Za-z0-9_-]{22}$/.test(opened.body.post)) {
      // a post of the class feed shared here: the link opens it where it is (its key is there)
      const link = el('a', { href: `${base}/feed#m-${opened.body.post}`, textContent: msgs.shared_post });
      li.append(el('p', { className: 'message-share' }, link));
    }
  } else {
    li.append(el('p', { className: 'message-problem hint', textContent: msgs[opened.error] || msgs.tampered }));
  }
  const tools = el('div', { className: 'message-tools' });
  if (item.can_delete) tools.append(button(msgs.delete, () => deleteMessage(item)));
  if (item.author !== cls.me && opened.body) {
    if (!isTeacher) tools.append(button(msgs.report, () => reportMessage(item)));
    const author = overview.people.find((p) => p.member === item.author);
    if (!isTeacher && author && author.role === 'guardian') tools.append(button(msgs.block, () => blockPerson(item.author)));
  }
  if (tools.childElementCount) li.append(tools);
  return li;
}

function button(text, onClick) {
  const node = el('button', { type: 'button', className: 'link small', textContent: text });
  node.addEventListener('click', () => onClick().catch(fail));
  return node;
}

async function loadConversation(id) {
  current = await api(`${base}/conversations/${id}`);
  for (const [member, name] of Object.entries(current.names)) names.set(member, name);
  const { conversation, settings } = current;
  document.getElementById('conversation-title').textContent = await titleOf(conversation);
  document.getElementById('conversation-members').textContent = conversation.members.map(nameOf).join(', ');
  const notice = document.getElementById('conversation-notice');
  const notes = [];
  if (conversation.kind === 'family' && settings.away_until) notes.push(fill(msgs.away, { date: new Date(`${settings.away_until}T12:00:00`).toLocaleDateString(locale, { dateStyle: 'long' }) }));
  if (conversation.kind === 'family' && settings.office_hours) notes.push(fill(msgs.office_hours, { hours: settings.office_hours }));
  notice.textContent = notes.join(' ');
  notice.hidden = notes.length === 0;
  const lines = conversation.kind === 'family' ? new Map() : membershipLines(current.chain);
  const list = document.getElementById('messages');
  list.replaceChildren();
  for (const item of current.items) list.append(await renderMessage(item, lines));
  if (!current.items.length) list.append(el('li', { className: 'hint', textContent: msgs.empty }));
  olderAt = current.next_before;
  document.getElementById('older-messages').hidden = !olderAt;
  document.getElementById('chat-composer').hidden = !conversation.can_write;
  document.getElementById('read-only').hidden = conversation.can_write;
  renderMembersTools();
  list.lastElementChild?.scrollIntoView({ block: 'nearest' });
}

/** The messages before those shown, put above them (the newest page is shown first). */
async function showOlder() {
  const page = await api(`${base}/conversations/${current.conversation.id}?before=${olderAt}`);
  const lines = current.conversation.kind === 'family' ? new Map() : membershipLines(current.chain);
  const list = document.getElementById('messages');
  const first = list.firstElementChild;
  for (const item of page.items) list.insertBefore(await renderMessage(item, lines), first);
  olderAt = page.next_before;
  document.getElementById('older-messages').hidden = !olderAt;
}

function renderMembersTools() {
  const tools = document.getElementById('members-tools');
  const { conversation } = current;
  tools.hidden = conversation.kind === 'family';
  if (tools.hidden) return;
  const list = document.getElementById('member-list');
  list.replaceChildren(...conversation.members.map((m) => el('li', { textContent: nameOf(m) })));
  const select = document.getElementById('add-person');
  select.replaceChildren();
  const inside = new Set(conversation.members);
  for (const person of overview.people) {
    if (inside.has(person.member)) continue;
    select.append(el('option', { value: person.member, textContent: personLabel(person) }));
  }
  document.getElementById('add-form').hidden = !conversation.can_write || select.options.length === 0;
  document.getElementById('leave').hidden = !conversation.can_write;
}

async function send(text) {
  const to = await recipients(current);
  const request = await sealed('chat', { text }, to, current.conversation.id);
  const answer = await api(`${base}/conversations/${current.conversation.id}/messages`, request);
  await loadConversation(current.conversation.id);
  if (answer.away_until) {
    const notice = document.getElementById('conversation-notice');
    notice.textContent = fill(msgs.away, { date: new Date(`${answer.away_until}T12:00:00`).toLocaleDateString(locale, { dateStyle: 'long' }) });
    notice.hidden = false;
  }
}

async function changeMembers(op, member) {
  const members = await verifyChain(current.conversation, current.chain);
  const active = new Set(cls.state.activeMembers());
  const now = [...members].filter((m) => active.has(m));
  if (!sameList(sorted(now), current.reply_to)) throw new UserError(msgs.members_mismatch);
  const after = op === 'leave' ? now.filter((m) => m !== member) : [...now, member];
  const request = await sealed('member', { op, member }, [...after, cls.me], current.conversation.id);
  await api(`${base}/conversations/${current.conversation.id}/members`, { op, member, ...request });
}

async function deleteMessage(item) {
  if (!window.confirm(msgs.confirm_delete)) return;
  await api(`${base}/conversations/${current.conversation.id}/messages/${item.id}`, undefined, { method: 'DELETE' });
  await loadConversation(current.conversation.id);
}

async function reportMessage(item) {
  const dialog = document.getElementById('report-dialog');
  const note = document.getElementById('report-note');
  note.value = '';
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
  if (dialog.returnValue !== 'report') return;
  // the one message's key, sealed to the teacher (and to the reporter, who keeps a copy)
  const { key } = await K.messageKeyFor(cls, item, keys);
  if (!key) throw new UserError(msgs.tampered);
  const teacher = overview.people.find((p) => p.role === 'teacher');
  const body = { key: b64urlEncode(key), note: note.value.trim() };
  const request = await sealed('report', body, [teacher.member, cls.me], item.id);
  await api(`${base}/conversations/${current.conversation.id}/messages/${item.id}/report`, request);
  const notice = document.getElementById('conversation-notice');
  notice.textContent = msgs.reported;
  notice.hidden = false;
}

async function blockPerson(member) {
  if (!window.confirm(fill(msgs.confirm_block, { name: nameOf(member) }))) return;
  await api(`${base}/chat/blocks`, { member, blocked: true }, { method: 'PUT' });
  overview = await api(`${base}/chat`);
  await loadConversation(current.conversation.id);
}

function wireConversation() {
  const form = document.getElementById('chat-composer');
  const area = document.getElementById('chat-text');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = area.value.trim();
    if (!text) return;
    form.querySelector('button').disabled = true;
    showError(form, '');
    try {
      await send(text);
      area.value = '';
    } catch (err) {
      showError(form, errorText(err));
    } finally {
      form.querySelector('button').disabled = false;
      area.focus();
    }
  });
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.getElementById('older-messages').addEventListener('click', () => showOlder().catch(fail));
  document.getElementById('add-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const member = document.getElementById('add-person').value;
    if (!member) return;
    changeMembers('add', member).then(() => loadConversation(current.conversation.id)).catch(fail);
  });
  document.getElementById('leave').addEventListener('click', () => {
    if (!window.confirm(msgs.confirm_leave)) return;
    changeMembers('leave', cls.me).then(() => location.assign(`${base}/chat`)).catch(fail);
  });
  document.addEventListener('carnet:live', (event) => {
    const detail = event.detail || {};
    if (detail.type !== 'chat' || detail.conversation !== current?.conversation.id) return;
    event.preventDefault();
    if (!area.value.trim()) loadConversation(current.conversation.id).catch(fail);
  });
}

// ------------------------------------------------------------------ teacher

function wireSettings() {
  const form = document.getElementById('chat-settings');
  if (!form) return;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      overview = await api(`${base}/chat/settings`, {
        parent_chat: data.get('parent_chat'), family_threads: data.get('family_threads'),
        office_hours: data.get('office_hours'), away_until: data.get('away_until') || '',
      }, { method: 'PUT' });
      showError(form, '');
      say(msgs.saved);
    } catch (err) {
      showError(form, errorText(err));
    }
  });
}

async function renderReports() {
  const { reports } = await api(`${base}/chat/reports`);
  const list = document.getElementById('report-list');
  document.getElementById('reports-empty').hidden = reports.length > 0;
  for (const report of reports) {
    const li = el('li', { className: 'report card' });
    li.append(el('p', { className: 'hint', textContent: `${fill(msgs.report_by, { name: report.reporter_name })} · ${timeText(report.created_at)}` }));
    const opened = await K.decryptItem(cls, report, keys, { id: report.id, kind: 'report', parent: report.reported_id });
    let text = msgs.tampered;
    if (opened.body && report.reported) {
      try {
        // the reported message opens with the key in the report, and its author's signature checks
        const key = b64urlDecode(opened.body.key, { length: 32 });
        const body = await G.decryptMessage(report.reported, key, { state: cls.state });
        if (report.reported.header.id !== report.reported_id || report.reported.header.kind !== 'chat') throw new Error('moved');
        text = body.text;
      } catch (err) {
        console.warn('a reported message failed its checks', err);
      }
    } else if (!report.reported) {
      text = msgs.deleted;
    }
    li.append(el('blockquote', { className: 'reported-text', textContent: text }));
    li.append(el('p', { textContent: fill(msgs.written_by, { name: report.author_name }) }));
    if (opened.body && opened.body.note) li.append(el('p', { className: 'hint', textContent: fill(msgs.note, { note: opened.body.note }) }));
    const tools = el('div', { className: 'message-tools' });
    if (report.reported) {
      tools.append(button(msgs.delete, async () => {
        if (!window.confirm(msgs.confirm_delete)) return;
        await api(`${base}/conversations/${report.conversation}/messages/${report.reported_id}`, undefined, { method: 'DELETE' });
        location.reload();
      }));
    }
    tools.append(button(msgs.handled, async () => {
      await api(`${base}/chat/reports/${report.id}/handled`, {});
      li.remove();
    }));
    li.append(tools);
    list.append(li);
  }
}

// ------------------------------------------------------------------ start

async function start() {
  keys = await loadAccountKeys(keyStoreName(root.dataset.accountId)).catch(() => null);
  if (!keys) throw new UserError(msgs.no_keys);
  cls = await K.openClass(classId, keys, root.dataset.accountId, msgs);
  if (cls.waiting) throw new UserError(msgs.waiting);
  overview = await api(`${base}/chat`);
  names = new Map(overview.people.map((p) => [p.member, p.name]));
  wireSettings();
  const conduct = document.getElementById('accept-conduct');
  if (conduct) {
    conduct.addEventListener('click', async () => {
      await api(`${base}/chat/conduct`, {}).catch(fail);
      location.reload();
    });
  }
  await renderList();
  if (mode === 'index') renderStart();
  if (mode === 'conversation') {
    wireConversation();
    await loadConversation(root.dataset.conversation);
  }
  if (mode === 'reports') await renderReports();
  say(msgs.ready);
}

start().catch((err) => { say(''); fail(err); }).finally(() => root.setAttribute('aria-busy', 'false'));
