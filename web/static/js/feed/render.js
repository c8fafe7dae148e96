// Turning decrypted posts into DOM. Only textContent and attributes are set
// from post data: nothing decrypted is ever parsed as HTML.

import { renderAction } from './actions.js';
import { download, humanSize, openAttachment } from './files.js';

export const REACTIONS = ['👍', '❤️', '😂', '😮', '🙏', '👏'];

export function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

function el(tag, { cls, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function when(iso, locale) {
  const date = new Date(iso);
  return date.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}

function renderAttachment(d, msgs) {
  const box = el('figure', { cls: `attachment ${d.kind}` });
  if (d.kind === 'image') {
    // the teacher's description (alt), encrypted with the post; older posts have only the file name
    const described = typeof d.alt === 'string' && d.alt.trim() ? d.alt : d.name;
    const button = el('button', { cls: 'photo', attrs: { type: 'button', 'aria-label': `${msgs.open_photo}: ${described}` } });
    const img = el('img', { attrs: { alt: described, loading: 'lazy' } });
    button.append(img);
    box.append(button);
    openAttachment(d.thumb || d).then((url) => { img.src = url; }, () => { img.alt = msgs.tampered; });
    button.addEventListener('click', async () => {
      const url = await openAttachment(d);
      window.open(url, '_blank', 'noopener');
    });
  } else if (d.kind === 'video' || d.kind === 'audio') {
    const play = el('button', { cls: 'small', text: `▶ ${msgs.play}`, attrs: { type: 'button' } });
    const caption = el('figcaption', { text: `${d.name} · ${humanSize(d.size)}` });
    box.append(play, caption);
    play.addEventListener('click', async () => {
      play.disabled = true;
      play.textContent = msgs.loading;
      try {
        const media = el(d.kind, { attrs: { controls: '', preload: 'metadata' } });
        media.src = await openAttachment(d);
        play.replaceWith(media);
        media.play().catch(() => {});
      } catch {
        play.textContent = msgs.tampered;
      }
    });
  } else {
    box.append(el('span', { cls: 'file-name', text: `📄 ${d.name}` }), el('span', { cls: 'hint', text: ` ${humanSize(d.size)} ` }));
  }
  const save = el('button', { cls: 'small link', text: msgs.download, attrs: { type: 'button' } });
  save.addEventListener('click', () => download(d).catch(() => { save.textContent = msgs.tampered; }));
  box.append(save);
  return box;
}

/**
 * One post: `item` from the API, `opened` = {body} or {error}, `replies` =
 * [{reply, opened}], `ctx` = {msgs, locale, role, mode, me, handlers}.
 */
export function renderPost(item, opened, replies, ctx) {
  const { msgs, handlers } = ctx;
  const node = document.getElementById('post-template').content.firstElementChild.cloneNode(true);
  node.dataset.id = item.id;
  node.id = `m-${item.id}`;
  const labels = node.querySelector('.post-labels');
  // the teacher's level: a badge for action needed and urgent, none for information
  if (item.priority === 'action' || item.priority === 'urgent') {
    labels.append(el('span', { cls: `badge priority-${item.priority}`, text: msgs[`priority_${item.priority}`] }));
    node.classList.add(`post-${item.priority}`);
  }
  if (ctx.mode === 'home') {
    const where = item.school ? fill(ctx.msgs.atSchool, { class: item.class_name, school: item.school }) : item.class_name;
    labels.append(el('span', { cls: 'tag class-tag', text: where }));
  }
  for (const name of item.children) labels.append(el('span', { cls: 'tag child-tag', text: item.targeted ? fill(msgs.about, { names: name }) : name }));
  node.querySelector('.post-author').textContent = item.author_name;
  const time = node.querySelector('.post-time');
  time.dateTime = item.created_at;
  time.textContent = when(item.created_at, ctx.locale);
  node.querySelector('.post-edited').hidden = item.version === 1;

  if (opened.error) {
    const problem = node.querySelector('.post-problem');
    problem.hidden = false;
    problem.textContent = msgs[opened.error] || msgs.tampered;
    node.classList.add('unreadable');
    node.querySelector('.comments').hidden = true;
    return node;
  }
  node.querySelector('.post-text').textContent = opened.body.text || '';
  const attachments = node.querySelector('.attachments');
  for (const d of opened.body.attachments || []) attachments.append(renderAttachment(d, msgs));
  // an event, sign-up, permission slip or poll (web/static/js/feed/actions.js)
  if (item.action) attachments.before(renderAction(item, opened.body, { msgs: ctx.actionMsgs, locale: ctx.locale, handlers }));

  // reactions: count per emoji; mine highlighted
  const counts = new Map(REACTIONS.map((e) => [e, 0]));
  let mine = null;
  for (const { reply, opened: r } of replies) {
    if (reply.kind !== 'reaction' || !r.body || !counts.has(r.body.emoji)) continue;
    counts.set(r.body.emoji, counts.get(r.body.emoji) + 1);
    if (reply.can_delete) mine = { emoji: r.body.emoji, id: reply.id };
  }
  const bar = node.querySelector('.reactions');
  for (const [emoji, n] of counts) {
    const button = el('button', { cls: `reaction${mine?.emoji === emoji ? ' mine' : ''}`, text: n ? `${emoji} ${n}` : emoji, attrs: { type: 'button', 'aria-pressed': String(mine?.emoji === emoji) } });
    button.addEventListener('click', () => handlers.react(item, emoji, mine));
    bar.append(button);
  }

  // shares: another guardian of my child pointed this post out to me
  for (const { reply, opened: r } of replies) {
    if (reply.kind !== 'share') continue;
    const note = el('p', { cls: 'share-note', attrs: { id: `m-${reply.id}` } });
    note.append(el('strong', { text: fill(msgs.shared_by, { name: reply.author_name }) }));
    if (r.body && r.body.note) note.append(document.createTextNode(` « ${r.body.note} »`));
    labels.parentElement.after(note);
  }

  const list = node.querySelector('.comment-list');
  for (const { reply, opened: r } of replies) {
    if (reply.kind !== 'comment') continue;
    const li = el('li', { cls: 'comment' });
    li.append(el('strong', { text: reply.author_name }), el('span', { cls: 'hint', text: ` · ${when(reply.created_at, ctx.locale)}` }));
    li.append(el('p', { text: r.body ? r.body.text : msgs[r.error] || msgs.tampered }));
    if (reply.can_delete) {
      const del = el('button', { cls: 'small link danger', text: msgs.delete, attrs: { type: 'button' } });
      del.addEventListener('click', () => handlers.remove(item, reply.id));
      li.append(del);
    }
    list.append(li);
  }
  const form = node.querySelector('.comment-form');
  if (!item.comments_enabled) {
    form.hidden = true;
    node.querySelector('.comments-off').hidden = false;
  } else {
    const area = form.querySelector('textarea');
    const id = `c-${item.id}`;
    area.id = id;
    form.querySelector('label').htmlFor = id;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (area.value.trim()) handlers.comment(item, area.value.trim(), form);
    });
  }

  const tools = node.querySelector('.post-tools');
  if (item.share_to && item.share_to.length > 1) {
    const share = el('button', { cls: 'small secondary', text: msgs.share, attrs: { type: 'button' } });
    share.addEventListener('click', () => handlers.share(item, node));
    tools.append(share);
  }
  if (ctx.role === 'guardian' && !item.targeted && opened.body) { // to the whole class only
    const share = el('button', { cls: 'small secondary', text: msgs.chat_share, attrs: { type: 'button' } });
    share.addEventListener('click', () => handlers.shareToChat(item, node));
    tools.append(share);
  }
  if (item.receipts) {
    const button = el('button', { cls: 'small secondary receipts', text: fill(msgs.read_by, { read: item.receipts[0], total: item.receipts[1] }), attrs: { type: 'button' } });
    button.addEventListener('click', () => handlers.receipts(item));
    tools.append(button);
  }
  if (item.can_edit) {
    const edit = el('button', { cls: 'small secondary', text: msgs.edit, attrs: { type: 'button' } });
    edit.addEventListener('click', () => handlers.edit(item, opened.body, node));
    const toggle = el('button', { cls: 'small secondary', text: item.comments_enabled ? msgs.comments_off_button : msgs.comments_on_button, attrs: { type: 'button' } });
    toggle.addEventListener('click', () => handlers.toggleComments(item));
    const del = el('button', { cls: 'small danger', text: msgs.delete, attrs: { type: 'button' } });
    del.addEventListener('click', () => handlers.remove(item, item.id));
    tools.append(edit, toggle, del);
  }
  return node;
}

/** The teacher's "who has read" dialog body, grouped by child. */
export function renderReceipts(receipts, msgs, locale) {
  const box = document.createDocumentFragment();
  box.append(el('p', { text: fill(msgs.read_by, { read: receipts.read, total: receipts.total }) }));
  const list = el('ul', { cls: 'receipts' });
  for (const child of receipts.children) {
    const li = el('li');
    li.append(el('strong', { text: child.child }));
    const inner = el('ul');
    for (const g of child.guardians) {
      inner.append(el('li', { cls: g.read_at ? 'read' : 'unread', text: `${g.name} — ${g.read_at ? `${msgs.read} (${when(g.read_at, locale)})` : msgs.not_read}` }));
    }
    li.append(inner);
    list.append(li);
  }
  box.append(list);
  return box;
}
