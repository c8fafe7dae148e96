// Gather a guardian's export: fetch what the node holds (/api/v1/me/export and
// its pages), decrypt every item here with this browser's keys, and download
// and decrypt the attachments. The result is plain data for data.json plus
// the files; nothing decrypted ever goes back to the node. An item that does
// not decrypt (sent before the guardian joined, not addressed to them, or
// failing its signature) is listed in `not_decrypted` with the reason, never
// dropped silently.

import * as G from '../e2e/groups.js';
import { b64urlDecode } from '../e2e/suite.js';
import * as K from '../feed/classkeys.js';
import { api, ApiError } from '../pages/common.js';
import { openSchoolGroup } from './school-group.js';

/** A file name safe on every system, keeping the person's own words where possible. */
export function safeName(name, fallback = 'file') {
  const clean = String(name || '')
    .replace(/[\u0000-\u001f\u007f/\\:*?"<>|]+/g, '_')
    .replace(/^[\s.]+|[\s.]+$/g, '')
    .slice(0, 100);
  return clean || fallback;
}

/** Fetch, check (SHA-256 of the ciphertext) and decrypt an attachment → its bytes. */
async function fileBytes(descriptor) {
  const response = await fetch(`/api/v1/blobs/${encodeURIComponent(descriptor.blob)}`, { credentials: 'same-origin' });
  if (!response.ok) throw new Error(`download failed (${response.status})`);
  const ct = new Uint8Array(await response.arrayBuffer());
  if ((await G.sha256B64(ct)) !== descriptor.ct_sha256) throw new Error('the file was altered');
  return G.decryptFile(b64urlDecode(descriptor.key), b64urlDecode(descriptor.prefix), descriptor.size, ct);
}

export class Collector {
  /**
   * `keys`: this browser's account keys; `accountId`; `msgs`: the page's translated
   * messages (reasons, class-key errors); `onProgress(step, count)`; `addFile(path, bytes)`.
   */
  constructor({ keys, accountId, msgs, onProgress, addFile }) {
    Object.assign(this, { keys, accountId, msgs, onProgress, addFile });
    this.classes = new Map();
    this.notDecrypted = [];
    this.fileCount = 0;
  }

  missing(what, item, cls, reason) {
    this.notDecrypted.push({
      what, id: item.id, class: cls?.name ?? null, date: item.created_at || item.at || null,
      reason: this.msgs.reasons[reason] || this.msgs.reasons.tampered,
    });
  }

  async open(item, cls, expected, what) {
    const opened = await K.decryptItem(cls.keys, item, this.keys, expected);
    if (opened.error) this.missing(what, item, cls, opened.error);
    return opened.body || null;
  }

  /** Attachments of a decrypted body → descriptors without keys, each with its file in the zip. */
  async files(owner, descriptors) {
    const out = [];
    for (const [index, d] of (Array.isArray(descriptors) ? descriptors : []).entries()) {
      const entry = { name: d.name || null, type: d.type || null, size: d.size ?? null, file: null };
      try {
        const path = `files/${owner}-${index + 1}-${safeName(d.name)}`;
        this.addFile(path, await fileBytes(d));
        entry.file = path;
        this.fileCount += 1;
        this.onProgress('files', this.fileCount);
      } catch (err) {
        if (err instanceof RangeError) throw err; // the zip is full: the page says so
        console.warn('an attachment did not download or decrypt', err);
        this.missing('attachment', { id: `${owner}-${index + 1}`, created_at: null }, null, 'file');
      }
      out.push(entry);
    }
    return out;
  }

  /** Every class: its verified keys, or why it cannot be read (not approved, log refused). */
  async openClasses(classes) {
    for (const c of classes) {
      const entry = { name: c.name, keys: null, problem: null };
      this.classes.set(c.id, entry);
      if (!c.approved) {
        entry.problem = this.msgs.reasons.waiting;
        continue;
      }
      try {
        const opened = await K.openClass(c.id, this.keys, this.accountId, this.msgs);
        if (opened.waiting) entry.problem = this.msgs.reasons.waiting;
        else entry.keys = opened;
      } catch (err) {
        entry.problem = err.message || this.msgs.reasons.tampered;
      }
    }
  }

  readable(classId, item, what) {
    const cls = this.classes.get(classId);
    if (cls && cls.keys) return cls;
    this.notDecrypted.push({
      what, id: item.id, class: cls?.name ?? null, date: item.created_at || null,
      reason: cls?.problem || this.msgs.reasons.tampered,
    });
    return null;
  }

  async post(item) {
    const cls = this.readable(item.class_id, item, 'post');
    const out = {
      id: item.id, class: item.class_name, school: item.school, about: item.children, author: item.author_name,
      created_at: item.created_at, updated_at: item.updated_at, edited: item.version > 1, level: item.priority,
      text: null, attachments: [], details: null, action: item.action, comments: [], reactions: [], shares: [],
    };
    if (!cls) return out;
    const body = await this.open(item, cls, { id: item.id, kind: 'post', parent: null }, 'post');
    if (body) {
      const { text, attachments, ...details } = body;
      out.text = typeof text === 'string' ? text : null;
      out.attachments = await this.files(item.id, attachments);
      out.details = Object.keys(details).length ? details : null;
    }
    for (const reply of item.replies) {
      const r = await this.open(reply, cls, { id: reply.id, kind: reply.kind, parent: item.id }, reply.kind);
      if (!r) continue;
      const who = { id: reply.id, author: reply.author_name, created_at: reply.created_at, mine: reply.can_delete };
      if (reply.kind === 'comment') out.comments.push({ ...who, text: r.text ?? null });
      else if (reply.kind === 'reaction') out.reactions.push({ ...who, emoji: r.emoji ?? null });
      else if (reply.kind === 'share') out.shares.push({ ...who, note: r.note ?? null });
    }
    return out;
  }

  async posts() {
    const out = [];
    let before = null;
    do {
      const page = await api(`/me/export/posts${before ? `?before=${before}` : ''}`);
      for (const item of page.items) {
        out.push(await this.post(item));
        this.onProgress('posts', out.length);
      }
      before = page.next_before;
    } while (before);
    return out;
  }

  async conversation(classId, summary) {
    const cls = this.readable(classId, summary, 'conversation');
    const out = {
      id: summary.id, class: cls?.name ?? null, kind: summary.kind, child: summary.child_name,
      title: null, started_at: null, members: [], messages: [],
    };
    if (!cls) return out;
    const opener = await this.open(summary, cls, { id: summary.id, kind: 'conversation', parent: null }, 'conversation');
    if (opener) out.title = typeof opener.title === 'string' ? opener.title : null;
    let before = null;
    const items = [];
    do {
      const page = await api(`/me/export/conversations/${classId}/${summary.id}${before ? `?before=${before}` : ''}`);
      out.members = summary.members.map((m) => page.names[m] || m);
      items.unshift(...page.items); // pages come newest first; each page is oldest first
      before = page.next_before;
    } while (before);
    for (const item of items) {
      const body = await this.open(item, cls, { id: item.id, kind: item.kind, parent: summary.id }, 'message');
      if (!body) continue;
      const message = { id: item.id, kind: item.kind, author: item.author_name, at: item.created_at };
      if (item.kind === 'chat') {
        message.text = typeof body.text === 'string' ? body.text : null;
        if (body.post) message.shared_post = body.post;
      } else {
        message.change = body; // a member joined, left or was added: who and how
      }
      out.messages.push(message);
    }
    this.onProgress('messages', items.length);
    return out;
  }

  async conversations(chats) {
    const out = [];
    for (const chat of chats) {
      for (const summary of chat.conversations) out.push(await this.conversation(chat.class_id, summary));
    }
    return out;
  }

  async absences(sections) {
    const out = [];
    for (const section of sections) {
      for (const note of section.notes) {
        const cls = this.readable(section.class_id, note, 'absence');
        const body = cls ? await this.open(note, cls, { id: note.id, kind: 'absence', parent: null }, 'absence') : null;
        out.push({
          id: note.id, class: section.class_name, child: note.child_name, kind: note.kind,
          first_day: note.first_day, last_day: note.last_day, author: note.author_name,
          created_at: note.created_at, seen_by_teacher_at: note.seen_at,
          reason: body && typeof body.text === 'string' ? body.text : null,
          arrival: body && body.arrival ? body.arrival : null,
        });
      }
    }
    return out;
  }

  async alerts(alerts) {
    const groups = new Map();
    const out = [];
    for (const alert of alerts) {
      const entry = {
        id: alert.id, school: alert.school, template: alert.template, drill: alert.drill, state: alert.state,
        sent_by: alert.sent_by, sent_at: alert.sent_at, closed_at: alert.closed_at,
        acknowledged_at: alert.acknowledged_at, messages: [],
      };
      const key = alert.group || '';
      if (!groups.has(key)) groups.set(key, openSchoolGroup(this.keys, this.accountId, alert.group, !alert.school).catch(() => null));
      const grp = await groups.get(key);
      for (const [index, m] of alert.messages.entries()) {
        let body = null;
        const header = m.message?.header;
        try {
          if (!grp || !grp.state) throw new Error('no group');
          if (!header || header.id !== m.id || header.parent !== (index === 0 ? null : alert.id)) throw new Error('misplaced');
          body = await G.decryptAlert({ message: m.message }, grp.state, grp.epochKeys);
        } catch (err) {
          this.missing('alert', { id: m.id, at: m.at }, null, err.code === 'epoch_key' ? 'no_epoch_key' : 'tampered');
        }
        entry.messages.push({ id: m.id, template: m.template, at: m.at, text: body ? (body.text ?? null) : null, body });
      }
      out.push(entry);
    }
    return out;
  }
}

export { ApiError };
