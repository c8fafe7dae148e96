// The encrypted feed page: a class's posts (teacher: composer, approvals,
// read receipts) or a guardian's timeline across their children's classes.
// Everything is decrypted here with this browser's keys; the node serves
// ciphertext, sealed keys and names.

import { loadAccountKeys } from '../e2e/keystore.js';
import { b64urlDecode, fingerprint } from '../e2e/suite.js';
import { shareToChat } from '../feed/chat-share.js';
import * as K from '../feed/classkeys.js';
import { renderStatus, signSlip, wireComposer as wireActionComposer } from '../feed/actions.js';
import { blobIdsOf, prepare, uploadPrepared } from '../feed/files.js';
import { fill, renderPost, renderReceipts } from '../feed/render.js';
import { api, errorText, keyStoreName, showError, UserError } from './common.js';

const root = document.getElementById('feed');
const msgs = JSON.parse(document.getElementById('feed-messages').textContent);
const actionMsgs = JSON.parse(document.getElementById('action-messages').textContent);
const locale = document.documentElement.lang || 'en';
const mode = root.dataset.mode;
const status = document.getElementById('feed-status');
const postsBox = document.getElementById('posts');
const olderButton = document.getElementById('older');
const newButton = document.getElementById('feed-new');

let keys = null;
const classes = new Map(); // class id → opened class (classkeys.openClass)
let nextBefore = null;
const readSent = new Set();
let notice = null; // shown once instead of "Up to date." (a removal just finished)

function say(text) {
  status.textContent = text;
}

function fail(err) {
  const box = document.getElementById('feed-error');
  box.textContent = errorText(err);
  box.hidden = false;
}

async function classFor(classId) {
  if (!classes.has(classId)) classes.set(classId, await K.openClass(classId, keys, root.dataset.accountId, msgs));
  return classes.get(classId);
}

function feedPath(before) {
  const params = new URLSearchParams();
  if (before) params.set('before', before);
  if (mode === 'class') return `/classes/${root.dataset.classId}/posts?${params}`;
  if (root.dataset.childId) params.set('child', root.dataset.childId);
  return `/feed?${params}`;
}

async function renderItem(item) {
  const cls = await classFor(item.class_id);
  // the node labels items; the signed headers must agree (id, kind, parent) or nothing is shown
  const opened = await K.decryptItem(cls, item, keys, { id: item.id, kind: 'post', parent: null });
  const replies = [];
  for (const reply of item.replies) {
    replies.push({ reply, opened: await K.decryptItem(cls, reply, keys, { id: reply.id, kind: reply.kind, parent: item.id }) });
  }
  const node = renderPost(item, opened, replies, { msgs, actionMsgs, locale, mode, handlers, role: root.dataset.role });
  if (opened.body && !item.read && !item.can_edit && !readSent.has(item.id)) {
    readSent.add(item.id);
    api(`/classes/${item.class_id}/posts/${item.id}/read`, {}).catch(() => readSent.delete(item.id));
  }
  return node;
}

async function loadPage(before = null) {
  const page = await api(feedPath(before));
  if (!before) postsBox.replaceChildren();
  for (const item of page.items) postsBox.append(await renderItem(item));
  nextBefore = page.next_before;
  olderButton.hidden = !nextBefore;
  const waiting = page.waiting.map((name) => fill(msgs.waiting, { class: name }));
  if (!postsBox.children.length && !waiting.length) say(notice || msgs.empty);
  else say(waiting.join(' ') || notice || msgs.ready);
  notice = null;
}

async function refresh() {
  classes.clear();
  await loadPage();
}

async function replaceItem(classId, postId) {
  // re-render one post from the first page that holds it (replies changed)
  const page = await api(mode === 'class' ? `/classes/${classId}/posts` : feedPath(null));
  const item = page.items.find((i) => i.id === postId);
  const old = document.getElementById(`m-${postId}`);
  if (item && old) old.replaceWith(await renderItem(item));
  else await refresh();
}

/** A reply to a post for some families is sealed to them as they are now (members of the verified log). */
function replyTo(cls, item) {
  return item.reply_to === null ? null : K.recipientsFor(cls, item.reply_to);
}

const handlers = {
  // an event, sign-up, permission slip or poll: answer for one child (a slip is signed here)
  async answerAction(item, mine, choice) {
    try {
      const body = { child: mine.child_id, choice };
      if (item.action.type === 'slip') {
        const cls = await classFor(item.class_id);
        Object.assign(body, await signSlip(keys, cls, item, mine.sign_child, choice[0]));
      }
      await api(`/classes/${item.class_id}/posts/${item.id}/answer`, body);
      await replaceItem(item.class_id, item.id);
    } catch (err) {
      fail(err);
    }
  },
  // the teacher moves the deadline or changes places: the post is re-encrypted with the new
  // structure inside (what browsers compare) and the node checks the change is compatible
  async editAction(item, body, structure) {
    try {
      const cls = await classFor(item.class_id);
      const to = item.child_ids.length
        ? K.recipientsFor(cls, cls.view.children.filter((c) => item.child_ids.includes(c.id)).flatMap((c) => c.members))
        : null;
      const request = await K.encryptFor(cls, keys, 'post', { ...body, action: { ...body.action, structure } }, {
        to, messageId: item.id, version: item.version + 1,
      });
      await api(`/classes/${item.class_id}/posts/${item.id}`, { ...request, blobs: blobIdsOf(body.attachments || []), action: structure }, { method: 'PUT' });
      await replaceItem(item.class_id, item.id);
    } catch (err) {
      fail(err);
    }
  },
  async actionStatus(item, labels, panel) {
    try {
      if (!panel.hidden) { panel.hidden = true; return; }
      const cls = await classFor(item.class_id);
      await renderStatus(item, labels, panel, { msgs: actionMsgs, locale, cls });
    } catch (err) {
      fail(err);
    }
  },
  async shareToChat(item, node) {
    try {
      const cls = await classFor(item.class_id);
      await shareToChat(item, node, {
        cls, keys, msgs, onDone: (done, err) => (err ? fail(err) : say(done)),
      });
    } catch (err) {
      fail(err);
    }
  },
  share(item, node) {
    const tools = node.querySelector('.post-tools');
    if (tools.querySelector('.share-form')) return;
    const form = document.createElement('form');
    form.className = 'share-form';
    const label = document.createElement('label');
    label.textContent = msgs.share_note;
    const area = document.createElement('textarea');
    area.rows = 2;
    area.maxLength = 1000;
    area.id = `share-${item.id}`;
    label.htmlFor = area.id;
    const send = document.createElement('button');
    send.type = 'submit';
    send.className = 'small';
    send.textContent = msgs.share_send;
    form.append(label, area, send);
    tools.after(form);
    area.focus();
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const cls = await classFor(item.class_id);
        const request = await K.encryptFor(cls, keys, 'share', { note: area.value.trim() }, {
          parent: item.id, to: K.recipientsFor(cls, item.share_to),
        });
        await api(`/classes/${item.class_id}/posts/${item.id}/replies`, request);
        form.remove();
        say(msgs.shared);
      } catch (err) {
        fail(err);
      }
    });
  },
  async comment(item, text, form) {
    try {
      const cls = await classFor(item.class_id);
      const to = replyTo(cls, item);
      const request = await K.encryptFor(cls, keys, 'comment', { text }, { parent: item.id, to });
      await api(`/classes/${item.class_id}/posts/${item.id}/replies`, request);
      form.reset();
      await replaceItem(item.class_id, item.id);
    } catch (err) {
      fail(err);
    }
  },
  async react(item, emoji, mine) {
    try {
      if (mine && mine.emoji === emoji) {
        await api(`/classes/${item.class_id}/messages/${mine.id}`, undefined, { method: 'DELETE' });
      } else {
        const cls = await classFor(item.class_id);
        const request = await K.encryptFor(cls, keys, 'reaction', { emoji }, { parent: item.id, to: replyTo(cls, item) });
        await api(`/classes/${item.class_id}/posts/${item.id}/replies`, request);
      }
      await replaceItem(item.class_id, item.id);
    } catch (err) {
      fail(err);
    }
  },
  async remove(item, messageId) {
    if (!window.confirm(msgs.confirm_delete)) return;
    try {
      await api(`/classes/${item.class_id}/messages/${messageId}`, undefined, { method: 'DELETE' });
      if (messageId === item.id) document.getElementById(`m-${item.id}`)?.remove();
      else await replaceItem(item.class_id, item.id);
    } catch (err) {
      fail(err);
    }
  },
  async toggleComments(item) {
    try {
      await api(`/classes/${item.class_id}/posts/${item.id}/comments`, { enabled: !item.comments_enabled }, { method: 'PUT' });
      await replaceItem(item.class_id, item.id);
    } catch (err) {
      fail(err);
    }
  },
  edit(item, body, node) {
    const text = node.querySelector('.post-text');
    const area = document.createElement('textarea');
    area.value = body.text || '';
    area.rows = 4;
    area.setAttribute('aria-label', msgs.edit);
    const save = document.createElement('button');
    save.textContent = msgs.save;
    const cancel = document.createElement('button');
    cancel.textContent = msgs.cancel;
    cancel.className = 'secondary';
    text.replaceChildren(area, save, cancel);
    area.focus();
    cancel.addEventListener('click', () => { text.textContent = body.text || ''; });
    save.addEventListener('click', async () => {
      try {
        const cls = await classFor(item.class_id);
        // a post for some families is sealed again to their guardians as they are now
        const to = item.child_ids.length
          ? K.recipientsFor(cls, cls.view.children.filter((c) => item.child_ids.includes(c.id)).flatMap((c) => c.members))
          : null;
        const request = await K.encryptFor(cls, keys, 'post', { ...body, text: area.value }, {
          to, messageId: item.id, version: item.version + 1,
        });
        await api(`/classes/${item.class_id}/posts/${item.id}`, { ...request, blobs: blobIdsOf(body.attachments || []) }, { method: 'PUT' });
        await replaceItem(item.class_id, item.id);
      } catch (err) {
        fail(err);
      }
    });
  },
  async receipts(item) {
    const dialog = document.getElementById('receipts-dialog');
    const note = document.getElementById('receipts-note');
    note.hidden = true;
    try {
      const receipts = await api(`/classes/${item.class_id}/posts/${item.id}/receipts`);
      document.getElementById('receipts-body').replaceChildren(renderReceipts(receipts, msgs, locale));
      document.getElementById('remind').onclick = async () => {
        try {
          const result = await api(`/classes/${item.class_id}/posts/${item.id}/remind`, {});
          const n = result.reminded;
          note.textContent = n === 0 ? msgs.reminded_none : n === 1 ? msgs.reminded_one : fill(msgs.reminded, { count: n });
        } catch (err) {
          note.textContent = errorText(err);
        }
        note.hidden = false;
      };
      dialog.showModal();
    } catch (err) {
      fail(err);
    }
  },
};

document.getElementById('receipts-close')?.addEventListener('click', () => document.getElementById('receipts-dialog').close());

// ------------------------------------------------------------------ teacher

async function teacherSetup(cls) {
  const view = cls.view;
  if (view.to_remove.length) {
    await K.removeAndRotate(cls, keys, view.to_remove.map((c) => c.member));
    notice = msgs.removed;
    say(notice);
    classes.delete(cls.classId);
    cls = await classFor(cls.classId);
  }
  const panel = document.getElementById('approvals');
  const pending = cls.view.to_approve.filter((c) => c.member !== cls.me);
  panel.hidden = !pending.length;
  const list = document.getElementById('approval-list');
  list.replaceChildren();
  for (const c of pending) {
    const li = document.createElement('li');
    const name = document.createElement('strong');
    name.textContent = c.display_name;
    const info = document.createElement('span');
    info.textContent = ` (${c.children.join(', ')}) `;
    const fp = document.createElement('code');
    fp.className = 'fingerprint';
    fp.translate = false;
    fp.textContent = c.fingerprint || '';
    li.append(name, info);
    if (c.school) {
      const school = document.createElement('span');
      school.className = 'remote-school';
      school.textContent = `${fill(msgs.remote_school, { school: c.school })} `;
      li.append(school);
    }
    li.append(fp);
    list.append(li);
  }
  document.getElementById('approve-all').onclick = async () => {
    try {
      await K.approve(cls, keys, pending);
      say(msgs.approved);
      classes.delete(cls.classId);
      await teacherSetup(await classFor(cls.classId));
    } catch (err) {
      fail(err);
    }
  };
  wireComposer();
}

const picked = [];

function showPicked() {
  const list = document.getElementById('picked');
  list.replaceChildren();
  picked.forEach((p, i) => {
    const li = document.createElement('li');
    li.textContent = `${p.name} `;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'small link';
    remove.textContent = msgs.remove_file;
    remove.setAttribute('aria-label', `${msgs.remove_file}: ${p.name}`);
    remove.addEventListener('click', () => { picked.splice(i, 1); showPicked(); });
    li.append(remove);
    if ((p.file.type || '').startsWith('image/')) li.append(altField(p, i));
    list.append(li);
  });
}

/** A photo's description for who cannot see it: encrypted in the post with the photo, shown as its alt. */
function altField(p, i) {
  const label = document.createElement('label');
  label.className = 'photo-alt-field';
  label.htmlFor = `photo-alt-${i}`;
  label.textContent = msgs.photo_alt;
  const input = document.createElement('input');
  input.id = `photo-alt-${i}`;
  input.className = 'photo-alt';
  input.maxLength = 500;
  input.value = p.alt || '';
  input.setAttribute('aria-describedby', `photo-alt-hint-${i}`);
  input.addEventListener('input', () => { p.alt = input.value; });
  const hint = document.createElement('span');
  hint.className = 'hint';
  hint.id = `photo-alt-hint-${i}`;
  hint.textContent = msgs.photo_alt_hint;
  const box = document.createElement('div');
  box.append(label, input, hint);
  return box;
}

let recorder = null;

async function toggleRecording(button) {
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch {
    throw new UserError(msgs.mic_denied);
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener('dataavailable', (e) => chunks.push(e.data));
  recorder.addEventListener('stop', () => {
    stream.getTracks().forEach((t) => t.stop());
    const type = (recorder.mimeType || 'audio/webm').split(';')[0];
    const ext = type.includes('mp4') ? 'm4a' : type.includes('ogg') ? 'ogg' : 'webm';
    const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-');
    const file = new File(chunks, `${msgs.audio_message}-${stamp}.${ext}`, { type });
    picked.push({ file, name: file.name });
    showPicked();
    recorder = null;
    button.textContent = msgs.record_start;
    button.classList.remove('recording');
  });
  recorder.start();
  button.textContent = msgs.record_stop;
  button.classList.add('recording');
}

function wireComposer() {
  const form = document.getElementById('composer');
  if (!form || form.dataset.wired) return;
  form.dataset.wired = '1';
  form.hidden = false;
  const childrenBox = document.getElementById('audience-children');
  for (const radio of form.querySelectorAll('input[name=audience]')) {
    radio.addEventListener('change', () => { childrenBox.hidden = form.audience.value !== 'children'; });
  }
  document.getElementById('post-files').addEventListener('change', (event) => {
    for (const file of event.target.files) picked.push({ file, name: file.name });
    event.target.value = '';
    showPicked();
  });
  document.getElementById('record').addEventListener('click', (event) => {
    toggleRecording(event.currentTarget).catch((err) => showError(form, errorText(err)));
  });
  const actionPart = wireActionComposer(form, actionMsgs); // "Add: event / sign-up / slip / poll"
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(form, '');
    const text = form.text.value.trim();
    const childIds = [...form.querySelectorAll('input[name=child]:checked')].map((c) => Number(c.value));
    let action = null;
    try {
      action = actionPart.collect();
    } catch (err) {
      return showError(form, err.message);
    }
    if (!text && !picked.length && !action) return showError(form, msgs.empty_post);
    if (form.audience.value === 'children' && !childIds.length) return showError(form, msgs.choose_children);
    const progress = document.getElementById('post-progress');
    form.querySelector('#post-submit').disabled = true;
    say(msgs.posting);
    try {
      const cls = await classFor(Number(root.dataset.classId));
      let to = null;
      if (childIds.length) {
        const members = cls.view.children.filter((c) => childIds.includes(c.id)).flatMap((c) => c.members);
        to = K.recipientsFor(cls, members);
      }
      const attachments = [];
      const blobs = [];
      progress.hidden = !picked.length;
      for (const [i, p] of picked.entries()) {
        const prepared = await prepare(p.file, p.name);
        const { descriptor, blobIds } = await uploadPrepared(cls.classId, prepared, (f) => { progress.value = (i + f) / picked.length; });
        if (prepared.kind === 'image' && p.alt?.trim()) descriptor.alt = p.alt.trim(); // encrypted with the post
        attachments.push(descriptor);
        blobs.push(...blobIds);
      }
      const body = action ? { text, attachments, action: action.body } : { text, attachments };
      const request = await K.encryptFor(cls, keys, 'post', body, { to });
      await api(`/classes/${cls.classId}/posts`, {
        ...request, blobs, children: childIds.length ? childIds : null, comments_enabled: form.querySelector('#post-comments').checked,
        priority: form.querySelector('#post-priority').value,
        ...(action ? { action: action.structure } : {}),
      });
      form.reset();
      actionPart.reset();
      childrenBox.hidden = true;
      picked.length = 0;
      showPicked();
      say(msgs.posted);
      await loadPage();
    } catch (err) {
      showError(form, errorText(err));
    } finally {
      progress.hidden = true;
      form.querySelector('#post-submit').disabled = false;
    }
  });
}

// ------------------------------------------------------------------ start

/** The fingerprint of the key the verified log says signs this class (not the node's word). */
async function showTeacherKey(adminB64) {
  const box = document.getElementById('teacher-key');
  if (!box || !adminB64) return;
  box.querySelector('code').textContent = await fingerprint(b64urlDecode(adminB64, { length: 32 }));
  box.hidden = false;
}

async function start() {
  keys = await loadAccountKeys(keyStoreName(root.dataset.accountId)).catch(() => null);
  if (!keys) {
    say('');
    fail(new UserError(msgs.no_keys));
    return;
  }
  if (mode === 'class') {
    const cls = await classFor(Number(root.dataset.classId));
    if (cls.state) showTeacherKey(cls.state.admins[0]);
    if (cls.view.status === 'manager') await teacherSetup(cls);
    else if (cls.waiting) {
      say(cls.view.status === 'none' ? msgs.no_group : fill(msgs.waiting, { class: root.dataset.className }));
      return;
    }
  }
  await loadPage();
}

olderButton.addEventListener('click', () => loadPage(nextBefore).catch(fail));
document.addEventListener('carnet:live', (event) => {
  const detail = event.detail || {};
  if (detail.type === 'answer') { // a family answered an event, sign-up, slip or poll shown here
    if (document.getElementById(`m-${detail.message}`) && !root.querySelector('.change-form')) {
      replaceItem(detail.class_id, detail.message).catch(fail);
    }
    return;
  }
  if (!['post', 'edit', 'delete', 'comment', 'reaction', 'share'].includes(detail.type)) return;
  // a class page shows only its own class; the home timeline shows them all
  if (mode === 'class' && Number(root.dataset.classId) !== detail.class_id) return;
  event.preventDefault(); // the feed shows it: no "New post" banner
  // never wipe what someone is typing: offer the refresh instead
  const typing = [...root.querySelectorAll('textarea')].some((t) => t.value.trim() || t === document.activeElement);
  if (typing) newButton.hidden = false;
  else refresh().catch(fail);
});
newButton.addEventListener('click', () => {
  newButton.hidden = true;
  refresh().catch(fail);
});

start().catch(fail).finally(() => root.setAttribute('aria-busy', 'false'));
