// A class's keys in this browser: verify the signed log the node serves,
// remember who the teacher is (trust on first use, compared with the slip's
// fingerprint) and the newest head seen (no rollback), open this member's
// envelopes and walk history links back to the school year's start.
// For the class's teacher, also set up the group, approve guardians and
// finish removals (remove + new key), as docs/protocol/e2e-groups.md §4 says.

import * as G from '../e2e/groups.js';
import { b64urlDecode, b64urlEncode } from '../e2e/suite.js';
import { api, UserError } from '../pages/common.js';

const now = () => Math.floor(Date.now() / 1000);

// Remembered per class (not per group id, which the node chooses): a node
// that served another group for the class would otherwise look like a first visit.
function pinKey(accountId, classId) {
  return `carnet-pin|${location.origin}|${accountId}|class-${classId}`;
}

function loadPin(accountId, classId) {
  try {
    return JSON.parse(localStorage.getItem(pinKey(accountId, classId)) || 'null');
  } catch {
    return null;
  }
}

function savePin(accountId, classId, state) {
  localStorage.setItem(
    pinKey(accountId, classId),
    JSON.stringify({ group: state.group, admins: state.admins, head: [state.headSeq, state.headHash] }),
  );
}

/**
 * Everything needed to read and write a class: {classId, view, state,
 * epochKeys (Map epoch → bytes), me} or {classId, view, waiting: true}.
 * Throws UserError with a message for people when the log or keys fail.
 */
export async function openClass(classId, keys, accountId, msgs) {
  let view = await api(`/classes/${classId}/group`);
  if (view.status === 'none' && view.to_approve.some((c) => c.member === view.me)) {
    await setupGroup(classId, keys, view);
    view = await api(`/classes/${classId}/group`);
  }
  if (view.status === 'keys_changed') throw new UserError(msgs.keys_changed);
  if (view.status === 'outside') throw new UserError(msgs.outside);
  if (view.status === 'none' || view.status === 'waiting') return { classId, view, waiting: true };
  const pin = loadPin(accountId, classId);
  if (pin && pin.group !== view.group) throw new UserError(msgs.log_refused);
  let state;
  try {
    state = await G.verifyLog(view.entries, {
      pinnedAdmins: pin ? pin.admins : null,
      knownHead: pin ? pin.head : null,
    });
  } catch (err) {
    throw new UserError(`${msgs.log_refused} (${err.message})`);
  }
  savePin(accountId, classId, state);
  const epochKeys = new Map();
  const envelopes = [...view.envelopes].sort((a, b) => b.epoch - a.epoch);
  for (const envelope of envelopes) {
    if (epochKeys.has(envelope.epoch)) continue;
    const commit = state.epochs[envelope.epoch]?.commit;
    if (!commit) continue;
    try {
      const key = await G.openEpochKey(state.group, envelope, view.me, keys.enc, keys.encPk, commit);
      for (const [epoch, k] of await G.epochKeysFrom(state, envelope.epoch, key)) epochKeys.set(epoch, k);
    } catch (err) {
      console.warn('an envelope did not open', err);
    }
  }
  return { classId, view, state, epochKeys, me: view.me, waiting: false };
}

async function setupGroup(classId, keys, view) {
  const group = G.newGroupId();
  const key = G.newEpochKey();
  const log = [];
  const append = async (op, body) => {
    const prev = log.length ? await G.entryHash(log[log.length - 1]) : null;
    log.push(await G.makeEntry(keys.sign, keys.signPk, group, log.length, prev, op, body, now()));
  };
  await append('create', G.createBody([keys.signPk]));
  await append('add', G.addBody(view.me, 'teacher', keys.signPk, keys.encPk));
  await append('rotate', await G.rotateBody(group, 0, key, [view.me], null));
  const envelope = await G.sealEpochKey(group, 0, key, view.me, keys.encPk);
  await api(`/classes/${classId}/group`, { entries: log, envelopes: [envelope] });
}

async function appendEntries(cls, keys, ops) {
  const log = [...cls.view.entries];
  const fresh = [];
  for (const [op, body] of ops) {
    const prev = await G.entryHash(log[log.length - 1]);
    const entry = await G.makeEntry(keys.sign, keys.signPk, cls.state.group, log.length, prev, op, body, now());
    log.push(entry);
    fresh.push(entry);
  }
  return { log, fresh };
}

/** Teacher: sign an `add` for each candidate and seal the current class key to them. */
export async function approve(cls, keys, candidates) {
  const epoch = cls.state.currentEpoch;
  const key = cls.epochKeys.get(epoch.epoch);
  if (!key) throw new UserError('no current class key');
  const ops = candidates.map((c) => [
    'add',
    G.addBody(c.member, c.role, b64urlDecode(c.sign_pk, { length: 32 }), b64urlDecode(c.enc_pk, { length: 32 })),
  ]);
  const { fresh } = await appendEntries(cls, keys, ops);
  const envelopes = [];
  for (const c of candidates) {
    envelopes.push(await G.sealEpochKey(cls.state.group, epoch.epoch, key, c.member, b64urlDecode(c.enc_pk, { length: 32 })));
  }
  await api(`/classes/${cls.classId}/group/entries`, { entries: fresh, envelopes });
}

/**
 * Teacher: `remove` each member, then a new class key sealed to everyone
 * left, linked to the previous one (or not, for a new school year: `cut`).
 */
export async function removeAndRotate(cls, keys, members, { cut = false } = {}) {
  const previous = cls.epochKeys.get(cls.state.currentEpoch.epoch);
  const ops = members.map((m) => ['remove', G.removeBody(m)]);
  const { log } = await appendEntries(cls, keys, ops);
  const after = await G.verifyLog(log);
  const number = after.epochs.length;
  const key = G.newEpochKey();
  const to = after.activeMembers();
  const rotate = await G.rotateBody(after.group, number, key, to, cut ? null : previous);
  const prev = await G.entryHash(log[log.length - 1]);
  log.push(await G.makeEntry(keys.sign, keys.signPk, after.group, log.length, prev, 'rotate', rotate, now()));
  const envelopes = [];
  for (const member of to) {
    const encPk = b64urlDecode(after.members.get(member).encPk, { length: 32 });
    envelopes.push(await G.sealEpochKey(after.group, number, key, member, encPk));
  }
  await api(`/classes/${cls.classId}/group/entries`, { entries: log.slice(cls.view.entries.length), envelopes });
}

/** The message key of a feed item (or reply) for this reader, or null with the reason. */
export async function messageKeyFor(cls, item, keys) {
  const header = item.message.header;
  if (header.epoch !== null) {
    const epochKey = cls.epochKeys.get(header.epoch);
    if (!epochKey) return { key: null, reason: 'no_epoch_key' };
    return { key: await G.messageKeyFromEpoch(epochKey, cls.state.group, header.epoch, header.id) };
  }
  if (!item.key) return { key: null, reason: 'not_addressed' };
  try {
    return { key: await G.openMessageKey(cls.state.group, header.id, item.key, cls.me, keys.enc, keys.encPk) };
  } catch {
    return { key: null, reason: 'not_addressed' };
  }
}

/**
 * Decrypt an item → {body} or {error: reason}. `expected` = {id, kind, parent}:
 * what the page is about to show it as; a signed header saying otherwise
 * (a message moved to another post, a comment shown as a post) is refused.
 */
export async function decryptItem(cls, item, keys, expected = null) {
  const header = item.message.header;
  if (expected && (header.id !== expected.id || header.kind !== expected.kind || header.parent !== expected.parent)) {
    return { error: 'tampered' };
  }
  const { key, reason } = await messageKeyFor(cls, item, keys);
  if (!key) return { error: reason };
  try {
    return { body: await G.decryptMessage(item.message, key, { state: cls.state }) };
  } catch (err) {
    console.warn('a message failed its checks', err);
    return { error: 'tampered' };
  }
}

/** Encrypt a new post, comment or reaction → the request body's {message, keys?}. */
export async function encryptFor(cls, keys, kind, body, { parent = null, to = null, messageId = null, version = 1 } = {}) {
  const id = messageId || G.newMessageId();
  if (to === null) {
    const epoch = cls.state.currentEpoch.epoch;
    const messageKey = await G.messageKeyFromEpoch(cls.epochKeys.get(epoch), cls.state.group, epoch, id);
    const message = await G.encryptMessage({
      signKey: keys.sign, signPk: keys.signPk, author: cls.me, group: cls.state.group, kind, body,
      messageKey, epoch, parent, messageId: id, version, at: now(),
    });
    return { message };
  }
  const messageKey = crypto.getRandomValues(new Uint8Array(32));
  const message = await G.encryptMessage({
    signKey: keys.sign, signPk: keys.signPk, author: cls.me, group: cls.state.group, kind, body,
    messageKey, to, parent, messageId: id, version, at: now(),
  });
  const sealed = [];
  for (const member of [...to].sort()) {
    const encPk = b64urlDecode(cls.state.members.get(member).encPk, { length: 32 });
    sealed.push(await G.sealMessageKey(cls.state.group, id, messageKey, member, encPk));
  }
  return { message, keys: sealed };
}

/** Recipients of a post for chosen children: the teacher and their approved guardians. */
export function recipientsFor(cls, memberIds) {
  const active = new Set(cls.state.activeMembers());
  return [...new Set([cls.me, ...memberIds])].filter((m) => active.has(m)).sort();
}

export { b64urlEncode };
