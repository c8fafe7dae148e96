// "Share in a conversation": a guardian points a post of the class feed out in one of
// the parent conversations they are in (the class's room or a private group). The
// chat message carries the post's id, encrypted like any message; the others open the
// post in the feed with the class key they already hold. Only posts to the whole
// class are offered: a post for some families stays with them.

import * as K from './classkeys.js';
import { recipients } from './chatcheck.js';
import { api } from '../pages/common.js';

async function titleOf(cls, keys, summary, msgs) {
  if (summary.kind === 'room') return msgs.chat_room;
  const opened = summary.key
    ? await K.decryptItem(cls, summary, keys, { id: summary.id, kind: 'conversation', parent: null })
    : {};
  return (opened.body && typeof opened.body.title === 'string' && opened.body.title.trim()) || msgs.chat_group;
}

/** Open the share form under the post's tools; resolves once it is shown. */
export async function shareToChat(item, node, { cls, keys, msgs, onDone }) {
  const tools = node.querySelector('.post-tools');
  if (tools.parentElement.querySelector('.chat-share-form')) return;
  const overview = await api(`/classes/${item.class_id}/chat`);
  const open = overview.conversations.filter((c) => c.joined && c.can_write && c.kind !== 'family');
  const form = document.createElement('form');
  form.className = 'chat-share-form share-form';
  if (!open.length) {
    const hint = document.createElement('p');
    hint.className = 'hint';
    const link = document.createElement('a');
    link.href = `/classes/${item.class_id}/chat`;
    link.textContent = msgs.chat_none;
    hint.append(link);
    form.append(hint);
    tools.after(form);
    return;
  }
  const pick = document.createElement('select');
  pick.id = `chat-share-${item.id}`;
  for (const summary of open) {
    const option = document.createElement('option');
    option.value = summary.id;
    option.textContent = await titleOf(cls, keys, summary, msgs);
    pick.append(option);
  }
  const pickLabel = document.createElement('label');
  pickLabel.htmlFor = pick.id;
  pickLabel.textContent = msgs.chat_to;
  const area = document.createElement('textarea');
  area.rows = 2;
  area.maxLength = 1000;
  area.id = `chat-share-note-${item.id}`;
  const areaLabel = document.createElement('label');
  areaLabel.htmlFor = area.id;
  areaLabel.textContent = msgs.share_note;
  const send = document.createElement('button');
  send.type = 'submit';
  send.className = 'small';
  send.textContent = msgs.share_send;
  form.append(pickLabel, pick, areaLabel, area, send);
  tools.after(form);
  pick.focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    send.disabled = true;
    try {
      const base = `/classes/${item.class_id}/conversations/${pick.value}`;
      const page = await api(base);
      const to = await recipients(cls, page, msgs);
      const request = await K.encryptFor(cls, keys, 'chat', { text: area.value.trim(), post: item.id }, { parent: pick.value, to });
      await api(`${base}/messages`, request);
      form.remove();
      onDone(msgs.chat_shared);
    } catch (err) {
      send.disabled = false;
      onDone(null, err);
    }
  });
}
