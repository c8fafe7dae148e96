// carnet-e2e-1 groups: membership logs, epoch keys, messages, emergency
// alerts and attachments.
//
// The browser side of docs/protocol/e2e-groups.md (alerts: §7). WebCrypto only, no
// third-party code; builds on suite.js (encodings, canonical JSON,
// signatures, HPKE). The Python reference is node/e2e/groups.py,
// messages.py and attachments.py; both are checked against
// tests/vectors/e2e-groups.json (scripts/gen-e2e-group-vectors) and must
// produce byte-identical entries, envelopes, messages and blobs.
//
// Conventions as in suite.js: bytes are Uint8Array, binary wire fields are
// base64url without padding, errors are Error objects with a stable `.code`:
//   "group_log"  a membership log (or entry) is refused   (Python GroupLogError)
//   "epoch_key"  an epoch key does not open or match       (EpochKeyError)
//   "message"    a message is malformed/tampered/wrong key (MessageError)
//   "attachment" a chunk is missing, moved or altered      (AttachmentError)
//   "argument"   a programming error (wrong types or sizes)
// Layer rule: no I/O (no network, storage or DOM); bytes and objects in and out.
// Parameters named `_...ForTests` fix randomness for test vectors only;
// reusing them destroys confidentiality, so application code never passes them.

import {
  SUITE,
  _internal,
  b64urlDecode,
  b64urlEncode,
  canonicalJson,
  hpkeOpen,
  signObject,
  utf8,
  verifyObject,
} from './suite.js';

const { aesGcmDecrypt, aesGcmEncrypt, concatBytes, equalBytes, hkdf, hpkeSealDeterministic } = _internal;

export const CONTEXT_ENTRY = 'carnet-e2e-1/group-entry';
export const CONTEXT_MESSAGE = 'carnet-e2e-1/message';
export const OPS = Object.freeze(['create', 'add', 'remove', 'rotate', 'admins']);
export const MAX_ADMINS = 16;
export const HISTORY_POLICIES = Object.freeze(['school_year', 'from_join']);
export const ROLES = Object.freeze(['teacher', 'guardian', 'admin']);
export const KINDS = Object.freeze([
  'post', 'comment', 'reaction', 'share', 'alert',
  'conversation', 'chat', 'member', 'report', 'absence',
]);
/** Kinds that start something (no parent); an alert may have one or not. */
export const TOP_KINDS = Object.freeze(['post', 'conversation', 'absence']);
/** Kinds always sealed to chosen recipients, never under the epoch key. */
export const RECIPIENT_KINDS = Object.freeze(['share', 'conversation', 'chat', 'member', 'report', 'absence']);
export const ALERT_TEMPLATES = Object.freeze(['lockdown', 'evacuation', 'shelter', 'all_clear', 'do_not_come', 'free']);
export const ALERT_TEXT_MAX = 2000;
export const PAD_BLOCK = 256;
export const CHUNK_SIZE = 65536;
export const TAG = 16;
export const PREFIX_LEN = 7;
export const MAX_RECIPIENTS = 5000;

const ENTRY_HASH_LABEL = utf8('carnet-e2e-1/group-entry-hash\0');
const COMMIT_LABEL = utf8('carnet-e2e-1/epoch-commit\0');
const LINK_INFO = utf8('carnet-e2e-1/history-link');
const EPOCH_KEY_INFO = utf8('carnet-e2e-1/epoch-key');
const MSG_KEY_INFO = utf8('carnet-e2e-1/message-key\0');
const AEAD_INFO = utf8('carnet-e2e-1/message-aead');
const KC_LABEL = utf8('carnet-e2e-1/key-commit\0');
const RECIPIENT_KEY_INFO = utf8('carnet-e2e-1/message-key');
const EMPTY = new Uint8Array(0);
const ID_RE = /^[A-Za-z0-9._@:-]{1,128}$/;
const ENTRY_KEYS = ['at', 'body', 'by', 'group', 'op', 'prev', 'seq', 'suite', 'type', 'sig'];
const HEADER_KEYS = ['suite', 'type', 'group', 'id', 'kind', 'parent', 'author', 'by', 'epoch', 'to', 'version', 'kc', 'nonce', 'at'];
const MAX_DEPTH = 64;

// ---------------------------------------------------------------- helpers

function fail(code, message, cause) {
  const err = new Error(message, cause === undefined ? undefined : { cause });
  err.code = code;
  return err;
}

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) throw fail('unsupported', 'WebCrypto (crypto.subtle) is not available; a secure context (HTTPS) is required.');
  return s;
}

function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function checkBytes(value, what, length) {
  if (!(value instanceof Uint8Array)) throw fail('argument', `${what} must be a Uint8Array`);
  if (length !== undefined && value.length !== length) {
    throw fail('argument', `${what} must be ${length} bytes, got ${value.length}`);
  }
  return value;
}

function isObject(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function hasExactly(obj, keys) {
  const own = Object.keys(obj);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(obj, k));
}

const isInt = (v) => typeof v === 'number' && Number.isSafeInteger(v);
const cj = (value) => utf8(canonicalJson(value));

async function sha256(data) {
  return new Uint8Array(await subtle().digest('SHA-256', data));
}

async function hmacSha256(key, data) {
  checkBytes(key, 'HMAC key');
  // An empty HMAC key equals 32 zero bytes; some browsers refuse the former.
  const k = await subtle().importKey('raw', key.length ? key : new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', k, data));
}

function sortedStrings(list) {
  // Member ids are ASCII, where UTF-16 order (JS) equals code point order (Python).
  return [...list].sort();
}

function equalLists(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `value` if it is a member id (1-128 of A-Z a-z 0-9 . _ @ : -), else throws with `code`. */
export function checkId(value, what, code = 'group_log') {
  if (typeof value !== 'string' || !ID_RE.test(value)) {
    throw fail(code, `${what} must be 1-128 characters of A-Z a-z 0-9 . _ @ : -`);
  }
  return value;
}

export function newGroupId() {
  return b64urlEncode(randomBytes(16));
}

// ------------------------------------------------------ strict JSON reader

/**
 * Parse untrusted UTF-8 JSON into the canonical value space, like Python's
 * federation.canonical.parse_json_strict: valid UTF-8 without BOM, standard
 * syntax, no duplicate keys, no NaN/Infinity, no fractions or exponents, no
 * integer beyond ±(2^53 - 1), no lone surrogates (also as escapes), nesting
 * ≤ 64. Throws code "canonical_json".
 */
export function parseJsonStrict(data) {
  checkBytes(data, 'parseJsonStrict input');
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data);
  } catch {
    throw fail('canonical_json', 'invalid UTF-8');
  }
  let i = 0;
  const bad = (what) => fail('canonical_json', `invalid JSON: ${what} at character ${i}`);
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const literal = (word, value) => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return value;
    }
    throw bad('unexpected token');
  };
  const string = () => {
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) throw bad('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        break;
      }
      if (c < 0x20) throw bad('control character in string');
      if (c !== 0x5c) {
        out += text[i++];
        continue;
      }
      const e = text[i + 1];
      const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }[e];
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
        i += 6;
      } else {
        throw bad('invalid escape');
      }
    }
    // Lone surrogates (literal ones cannot survive the fatal decoder; escaped ones can).
    if (!isWellFormedString(out)) throw fail('canonical_json', 'string contains a lone surrogate');
    return out;
  };
  const number = () => {
    const m = /^-?(?:0|[1-9][0-9]*)/.exec(text.slice(i, i + 400));
    if (!m) throw bad('unexpected token');
    const next = text[i + m[0].length];
    if (next === '.' || next === 'e' || next === 'E') throw fail('canonical_json', 'non-integer numbers are not allowed');
    if (m[0].length > 17 || BigInt(m[0]) > BigInt(Number.MAX_SAFE_INTEGER) || BigInt(m[0]) < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw fail('canonical_json', `integer ${m[0].slice(0, 20)} is outside ±(2**53 - 1)`);
    }
    i += m[0].length;
    return Number(m[0]) || 0; // -0 reads as 0, as in Python
  };
  const value = (depth) => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) throw fail('canonical_json', `nesting deeper than ${MAX_DEPTH} levels`);
      i++;
      ws();
      const close = c === '{' ? '}' : ']';
      const result = c === '{' ? {} : [];
      if (text[i] === close) {
        i++;
        return result;
      }
      for (;;) {
        if (c === '{') {
          ws();
          if (text[i] !== '"') throw bad('expected a string key');
          const key = string();
          if (Object.hasOwn(result, key)) throw fail('canonical_json', `duplicate object key ${JSON.stringify(key)}`);
          ws();
          if (text[i] !== ':') throw bad("expected ':'");
          i++;
          // defineProperty: a "__proto__" key stays an ordinary own member.
          Object.defineProperty(result, key, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        } else {
          result.push(value(depth + 1));
        }
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return result;
        }
        throw bad(`expected ',' or '${close}'`);
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true', true);
    if (c === 'f') return literal('false', false);
    if (c === 'n') return literal('null', null);
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    throw bad(i >= text.length ? 'unexpected end' : 'unexpected token');
  };
  const result = value(0);
  ws();
  if (i !== text.length) throw bad('extra data');
  return result;
}

function isWellFormedString(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

// ================================================================ §2 the log

/** The chain hash of a signed entry (all members, `sig` included). */
export async function entryHash(entry) {
  return b64urlEncode(await sha256(concatBytes(ENTRY_HASH_LABEL, cj(entry))));
}

/** Build and sign one log entry; `prev` is the previous entry's hash (null for seq 0). */
export async function makeEntry(signKey, signPk, group, seq, prev, op, body, at) {
  checkBytes(signPk, 'signPk', 32);
  const entry = { suite: SUITE, type: 'group-entry', group, seq, prev, op, by: b64urlEncode(signPk), body, at };
  const sig = await signObject(signKey, CONTEXT_ENTRY, entry);
  // Signing with a key that is not signPk's would produce a log nobody accepts.
  if (!(await verifyObject(signPk, CONTEXT_ENTRY, entry, sig))) {
    throw fail('key_mismatch', 'the signing key does not match signPk');
  }
  return { ...entry, sig };
}

export function createBody(admins, history = 'school_year') {
  return { admins: admins.map((a) => b64urlEncode(checkBytes(a, 'admin key', 32))), history };
}

/** The body of an `admins` entry: the group's new admin (emergency-role) keys (Uint8Array each). */
export function adminsBody(admins) {
  return { admins: admins.map((a) => b64urlEncode(checkBytes(a, 'admin key', 32))) };
}

export function addBody(member, role, signPk, encPk) {
  return {
    member,
    role,
    sign_pk: b64urlEncode(checkBytes(signPk, 'signPk', 32)),
    enc_pk: b64urlEncode(checkBytes(encPk, 'encPk', 32)),
  };
}

export function removeBody(member) {
  return { member };
}

/** A rotate body: commitment to `key`; a history link to `previousKey` unless a cut (previousKey null). */
export async function rotateBody(group, epoch, key, to, previousKey, { _linkNonceForTests } = {}) {
  let link = null;
  if (previousKey !== null && previousKey !== undefined) {
    link = await makeHistoryLink(group, epoch, key, previousKey, { _nonceForTests: _linkNonceForTests });
  }
  return {
    epoch,
    commit: b64urlEncode(await epochCommitment(group, epoch, key)),
    cut: link === null,
    link,
    to: sortedStrings(to),
  };
}

// ---------------------------------------------------------- verification

/** The membership and epochs a verified log establishes (mirror of Python GroupState). */
export class GroupState {
  constructor(group, admins, history) {
    this.group = group;
    this.admins = admins;
    this.history = history;
    /** member id → {member, role, signPk, encPk, active, pastSignPks: Set} (keys as base64url) */
    this.members = new Map();
    /** [{epoch, commit, cut, link, to, seq, admins}]; admins: those in force when the rotate was applied */
    this.epochs = [];
    this.headSeq = 0;
    this.headHash = null;
    /** members removed since the last rotate: content must wait for a new epoch */
    this.pendingRemovals = [];
    /** an `admins` entry since the last rotate: content must wait for a new epoch */
    this.pendingAdmins = false;
    /** the admins named by `create`: the root of trust that `pinnedAdmins` checks */
    this.rootAdmins = [...admins];
  }

  /** True while a removal or an admin change waits for the next rotate: do not encrypt. */
  get pending() {
    return this.pendingRemovals.length > 0 || this.pendingAdmins;
  }

  /** The admins in force for `epoch` (null if the log has no such epoch). */
  epochAdmins(epoch) {
    if (!isInt(epoch) || epoch < 0 || epoch >= this.epochs.length) return null;
    return this.epochs[epoch].admins;
  }

  get currentEpoch() {
    return this.epochs.length ? this.epochs[this.epochs.length - 1] : null;
  }

  activeMembers() {
    return sortedStrings([...this.members.values()].filter((m) => m.active).map((m) => m.member));
  }

  /** True if the log ever gave `signPkB64` to `member` (current or earlier key). */
  signerIsMember(member, signPkB64) {
    const m = this.members.get(member);
    return m !== undefined && (signPkB64 === m.signPk || m.pastSignPks.has(signPkB64));
  }
}

function require_(cond, message) {
  if (!cond) throw fail('group_log', message);
}

function b64Key(value, what) {
  try {
    b64urlDecode(value, { length: 32, what });
  } catch (err) {
    throw fail('group_log', `${what} must be 32 bytes of base64url`, err);
  }
  return value;
}

function checkShape(entry, seq, group) {
  require_(isObject(entry), `entry ${seq} is not an object`);
  try {
    canonicalJson(entry); // signatures and hashes need it; refuse fractions, unsafe integers
  } catch (err) {
    throw fail('group_log', `entry ${seq} is not canonical JSON: ${err.message}`, err);
  }
  require_(hasExactly(entry, ENTRY_KEYS), `entry ${seq} has unexpected or missing members`);
  require_(entry.suite === SUITE && entry.type === 'group-entry', `entry ${seq}: wrong suite or type`);
  require_(entry.seq === seq && isInt(entry.seq), `entry ${seq}: sequence number out of order`);
  require_(OPS.includes(entry.op), `entry ${seq}: unknown operation`);
  require_(isInt(entry.at), `entry ${seq}: 'at' must be an integer`);
  require_(isObject(entry.body), `entry ${seq}: body must be an object`);
  checkId(entry.group, 'group');
  if (group !== null) require_(entry.group === group, `entry ${seq} belongs to another group`);
  return { ...entry };
}

async function verifyEntrySignature(by, entry) {
  if (typeof entry.sig !== 'string') return false;
  const { sig, ...unsigned } = entry;
  return verifyObject(b64urlDecode(by), CONTEXT_ENTRY, unsigned, sig);
}

/**
 * Check one entry against the state before it (null for the first); return
 * the state after it. The state is only changed if the entry is accepted.
 */
export async function applyEntry(state, entry) {
  const seq = state === null ? 0 : state.headSeq + 1;
  const e = checkShape(entry, seq, state === null ? null : state.group);
  const by = b64Key(e.by, 'signer key');
  require_(await verifyEntrySignature(by, e), `entry ${seq}: bad signature`);
  const body = e.body;
  if (state === null) {
    require_(e.op === 'create' && e.prev === null, 'the log must start with a create entry');
    require_(hasExactly(body, ['admins', 'history']), 'create: unexpected members');
    require_(Array.isArray(body.admins) && body.admins.length >= 1 && body.admins.length <= 16, 'create: 1-16 admins');
    const admins = body.admins.map((a) => b64Key(a, 'admin key'));
    require_(admins.includes(by), 'create must be signed by one of its admins');
    require_(HISTORY_POLICIES.includes(body.history), 'create: unknown history policy');
    const created = new GroupState(e.group, admins, body.history);
    created.headHash = await entryHash(e);
    return created;
  }
  require_(e.prev === state.headHash, `entry ${seq}: does not follow the previous entry (fork)`);
  require_(state.admins.includes(by), `entry ${seq}: signed by someone who is not an admin of this group`);
  const headHash = await entryHash(e);
  if (e.op === 'create') {
    throw fail('group_log', `entry ${seq}: a second create`);
  } else if (e.op === 'add') {
    require_(hasExactly(body, ['member', 'role', 'sign_pk', 'enc_pk']), 'add: unexpected members');
    const mid = checkId(body.member, 'member');
    require_(ROLES.includes(body.role), 'add: unknown role');
    const signPk = b64Key(body.sign_pk, 'sign_pk');
    const encPk = b64Key(body.enc_pk, 'enc_pk');
    require_(
      body.role !== 'admin' || state.admins.includes(signPk),
      `entry ${seq}: add: a member with the role admin must hold one of the group's admin (emergency-role) keys`,
    );
    const old = state.members.get(mid);
    const past = old === undefined ? new Set() : new Set([...old.pastSignPks, old.signPk]);
    state.members.set(mid, { member: mid, role: body.role, signPk, encPk, active: true, pastSignPks: past });
    const pending = state.pendingRemovals.indexOf(mid);
    if (pending >= 0) state.pendingRemovals.splice(pending, 1);
  } else if (e.op === 'admins') {
    require_(hasExactly(body, ['admins']), 'admins: unexpected members');
    require_(
      Array.isArray(body.admins) && body.admins.length >= 1 && body.admins.length <= MAX_ADMINS,
      `entry ${seq}: admins: 1-${MAX_ADMINS} admins`,
    );
    const admins = body.admins.map((a) => b64Key(a, 'admin key'));
    require_(new Set(admins).size === admins.length, `entry ${seq}: admins: a key is listed twice`);
    state.admins = admins;
    state.pendingAdmins = true;
  } else if (e.op === 'remove') {
    require_(hasExactly(body, ['member']), 'remove: unexpected members');
    const mid = checkId(body.member, 'member');
    require_(state.members.has(mid) && state.members.get(mid).active, 'remove: not a member');
    state.members.get(mid).active = false;
    state.pendingRemovals.push(mid);
  } else {
    require_(hasExactly(body, ['epoch', 'commit', 'cut', 'link', 'to']), 'rotate: unexpected members');
    const number = state.epochs.length;
    require_(body.epoch === number && isInt(body.epoch), `rotate: expected epoch ${number}`);
    b64Key(body.commit, 'commit');
    require_(typeof body.cut === 'boolean', 'rotate: cut must be true or false');
    require_(number > 0 || body.cut, 'rotate: the first epoch must be a cut');
    if (body.cut) {
      require_(body.link === null, 'rotate: a cut has no history link');
    } else {
      require_(isObject(body.link) && hasExactly(body.link, ['nonce', 'ct']), 'rotate: bad history link');
    }
    require_(Array.isArray(body.to), "rotate: 'to' must be a list");
    require_(equalLists(body.to, state.activeMembers()), 'rotate: recipients differ from the members');
    state.epochs.push({ epoch: number, commit: body.commit, cut: body.cut, link: body.link, to: [...body.to], seq, admins: [...state.admins] });
    state.pendingRemovals = [];
    state.pendingAdmins = false;
  }
  state.headSeq = seq;
  state.headHash = headHash;
  return state;
}

/**
 * Replay a whole log from seq 0. Options: `pinnedAdmins` (admin keys, base64url,
 * remembered from an earlier visit: a log naming others fails; they must be the
 * create's admins, `state.rootAdmins`, or, with `knownHead`, the admins in force
 * at that head) and `knownHead` ({seq, hash} or [seq, hash], the highest head
 * verified before: a log not containing it fails). Throws code "group_log"
 * naming the first problem.
 */
export async function verifyLog(entries, { pinnedAdmins = null, knownHead = null } = {}) {
  require_(Array.isArray(entries) && entries.length > 0, 'the log is empty');
  let state = null;
  const hashes = [];
  const adminsAt = [];
  for (const entry of entries) {
    state = await applyEntry(state, entry);
    hashes.push(state.headHash);
    adminsAt.push([...state.admins]);
  }
  let headOk = false;
  let headSeq = null;
  if (knownHead !== null && knownHead !== undefined) {
    const [seq, digest] = Array.isArray(knownHead) ? knownHead : [knownHead.seq, knownHead.hash];
    headOk = isInt(seq) && seq >= 0 && seq < hashes.length && hashes[seq] === digest;
    headSeq = seq;
  }
  if (pinnedAdmins !== null && pinnedAdmins !== undefined) {
    const pinned = Array.isArray(pinnedAdmins) ? sortedStrings(pinnedAdmins) : null;
    require_(
      pinned !== null && (equalLists(pinned, sortedStrings(state.rootAdmins)) || (headOk && equalLists(pinned, sortedStrings(adminsAt[headSeq])))),
      "the class's teacher keys changed",
    );
  }
  if (knownHead !== null && knownHead !== undefined) require_(headOk, 'the log was rolled back or rewritten');
  return state;
}

// ========================================================== §3 epoch keys

export function newEpochKey() {
  return randomBytes(32);
}

export async function epochCommitment(group, epoch, key) {
  checkBytes(key, 'epoch key');
  return hmacSha256(key, concatBytes(COMMIT_LABEL, cj({ epoch, group })));
}

/** Return `key` if it matches the signed commitment (base64url), else throw code "epoch_key". */
export async function checkEpochKey(group, epoch, key, commitB64) {
  let ok = false;
  try {
    if (key instanceof Uint8Array && key.length === 32) {
      const commit = b64urlDecode(commitB64, { length: 32, what: 'commit' });
      ok = equalBytes(await epochCommitment(group, epoch, key), commit);
    }
  } catch {
    ok = false;
  }
  if (!ok) throw fail('epoch_key', `epoch ${epoch} key does not match the teacher's signed commitment`);
  return key;
}

function linkAad(group, epoch) {
  return cj({ from: epoch, group, to: epoch - 1, type: 'history-link' });
}

/** {nonce, ct}: `previousKey` encrypted under a key derived from `key` (epoch `epoch`). */
export async function makeHistoryLink(group, epoch, key, previousKey, { _nonceForTests } = {}) {
  checkBytes(key, 'epoch key', 32);
  checkBytes(previousKey, 'previous epoch key', 32);
  const linkKey = await hkdf(key, EMPTY, LINK_INFO, 32);
  const nonce = _nonceForTests ?? randomBytes(12);
  const ct = await aesGcmEncrypt(linkKey, nonce, previousKey, linkAad(group, epoch));
  return { nonce: b64urlEncode(nonce), ct: b64urlEncode(ct) };
}

/** The key of epoch `epoch - 1` from the link of epoch `epoch`; throws code "epoch_key". */
export async function openHistoryLink(group, epoch, key, link) {
  try {
    const linkKey = await hkdf(checkBytes(key, 'epoch key'), EMPTY, LINK_INFO, 32);
    const nonce = b64urlDecode(link.nonce, { length: 12, what: 'link nonce' });
    const ct = b64urlDecode(link.ct, { length: 48, what: 'link ct' });
    return await aesGcmDecrypt(linkKey, nonce, ct, linkAad(group, epoch));
  } catch (err) {
    throw fail('epoch_key', `history link of epoch ${epoch} does not open`, err);
  }
}

function envelopeAad(group, epoch, member, encPk) {
  return cj({ enc_pk: b64urlEncode(encPk), epoch, group, member });
}

/** An envelope {epoch, member, enc, ct}: the epoch key sealed (HPKE) to one member's encryption key. */
export async function sealEpochKey(group, epoch, key, member, encPk, { _ikmEForTests } = {}) {
  checkBytes(encPk, 'encPk', 32);
  checkBytes(key, 'epoch key', 32);
  const { enc, ct } = await hpkeSealDeterministic(encPk, EPOCH_KEY_INFO, envelopeAad(group, epoch, member, encPk), key, { ikmE: _ikmEForTests });
  return { epoch, member, enc: b64urlEncode(enc), ct: b64urlEncode(ct) };
}

/**
 * Open an envelope addressed to `member` (encSk: private X25519 CryptoKey or
 * 32 raw bytes; encPk: the member's public key bytes) and check the key
 * against the signed commitment. Throws code "epoch_key".
 */
export async function openEpochKey(group, envelope, member, encSk, encPk, commitB64) {
  const epoch = isObject(envelope) ? envelope.epoch : undefined;
  if (!isInt(epoch) || envelope.member !== member) {
    throw fail('epoch_key', 'this envelope is not addressed to this member');
  }
  let key;
  try {
    key = await hpkeOpen(
      encSk,
      b64urlDecode(envelope.enc, { length: 32, what: 'envelope enc' }),
      EPOCH_KEY_INFO,
      envelopeAad(group, epoch, member, encPk),
      b64urlDecode(envelope.ct, { length: 48, what: 'envelope ct' }),
    );
  } catch (err) {
    throw fail('epoch_key', `the epoch ${epoch} envelope does not open`, err);
  }
  return checkEpochKey(group, epoch, key, commitB64);
}

/** Walk history links from a checked epoch key back to the last cut → Map epoch → key. */
export async function epochKeysFrom(state, newestEpoch, newestKey) {
  let epoch = state.epochs[newestEpoch];
  if (!isInt(newestEpoch) || epoch === undefined) throw fail('epoch_key', `the log has no epoch ${newestEpoch}`);
  const keys = new Map([[newestEpoch, await checkEpochKey(state.group, newestEpoch, newestKey, epoch.commit)]]);
  let key = newestKey;
  while (!epoch.cut && epoch.link !== null) {
    const previous = await openHistoryLink(state.group, epoch.epoch, key, epoch.link);
    epoch = state.epochs[epoch.epoch - 1];
    key = await checkEpochKey(state.group, epoch.epoch, previous, epoch.commit);
    keys.set(epoch.epoch, key);
  }
  return keys;
}

// ============================================================ §5 messages

export function newMessageId() {
  return b64urlEncode(randomBytes(16));
}

/** ISO/IEC 7816-4 padding to a multiple of 256 bytes. */
export function pad(data) {
  checkBytes(data, 'pad input');
  const out = new Uint8Array(Math.ceil((data.length + 1) / PAD_BLOCK) * PAD_BLOCK);
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

export function unpad(data) {
  checkBytes(data, 'unpad input');
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  if (end === 0 || data[end - 1] !== 0x80 || data.length % PAD_BLOCK) throw fail('message', 'bad padding');
  return data.subarray(0, end - 1);
}

export async function messageKeyFromEpoch(epochKey, group, epoch, messageId) {
  checkBytes(epochKey, 'epoch key');
  const salt = b64urlDecode(messageId, { length: 16, what: 'message id' });
  return hkdf(epochKey, salt, concatBytes(MSG_KEY_INFO, cj({ epoch, group })), 32);
}

/** The key commitment `kc` (base64url) of a message key. */
export async function keyCommitment(messageKey, group, messageId) {
  checkBytes(messageKey, 'message key');
  return b64urlEncode(await hmacSha256(messageKey, concatBytes(KC_LABEL, cj({ group, id: messageId }))));
}

function recipientAad(group, messageId, member, encPk) {
  return cj({ enc_pk: b64urlEncode(encPk), group, id: messageId, member });
}

/** Recipient mode: the message key sealed to one member → {member, enc, ct}. */
export async function sealMessageKey(group, messageId, messageKey, member, encPk, { _ikmEForTests } = {}) {
  checkBytes(encPk, 'encPk', 32);
  checkBytes(messageKey, 'message key');
  const { enc, ct } = await hpkeSealDeterministic(encPk, RECIPIENT_KEY_INFO, recipientAad(group, messageId, member, encPk), messageKey, {
    ikmE: _ikmEForTests,
  });
  return { member, enc: b64urlEncode(enc), ct: b64urlEncode(ct) };
}

/** Open a sealed message key addressed to `member`; throws code "message". */
export async function openMessageKey(group, messageId, sealed, member, encSk, encPk) {
  if (!isObject(sealed) || sealed.member !== member) throw fail('message', 'this message key is sealed to someone else');
  try {
    return await hpkeOpen(
      encSk,
      b64urlDecode(sealed.enc, { length: 32, what: 'enc' }),
      RECIPIENT_KEY_INFO,
      recipientAad(group, messageId, member, encPk),
      b64urlDecode(sealed.ct, { length: 48, what: 'ct' }),
    );
  } catch (err) {
    throw fail('message', 'the message key does not open', err);
  }
}

async function signedPart(header, ct) {
  return { ct_sha256: b64urlEncode(await sha256(ct)), header };
}

/**
 * Encrypt and sign a message → {header, ct, sig} (add `keys` for recipient
 * mode). Exactly one of `epoch` (epoch-key message) and `to` (recipients).
 */
export async function encryptMessage({
  signKey,
  signPk,
  author,
  group,
  kind,
  body,
  messageKey,
  epoch = null,
  to = null,
  parent = null,
  messageId = null,
  version = 1,
  at = 0,
  _nonceForTests,
}) {
  if ((epoch === null || epoch === undefined) === (to === null || to === undefined)) {
    throw fail('argument', 'a message uses either an epoch key or a recipient list');
  }
  checkBytes(signPk, 'signPk', 32);
  checkBytes(messageKey, 'message key');
  const id = messageId || newMessageId();
  const nonce = _nonceForTests || randomBytes(12);
  const header = {
    suite: SUITE,
    type: 'message',
    group,
    id,
    kind,
    parent,
    author,
    by: b64urlEncode(signPk),
    epoch: epoch ?? null,
    to: to === null || to === undefined ? null : sortedStrings(to),
    version,
    kc: await keyCommitment(messageKey, group, id),
    nonce: b64urlEncode(nonce),
    at,
  };
  checkHeader(header);
  const aeadKey = await hkdf(messageKey, EMPTY, AEAD_INFO, 32);
  const ct = await aesGcmEncrypt(aeadKey, nonce, pad(cj(body)), cj(header));
  const sig = await signObject(signKey, CONTEXT_MESSAGE, await signedPart(header, ct));
  return { header, ct: b64urlEncode(ct), sig };
}

/** Structure of a header (what the node can check without keys); throws code "message". */
export function checkHeader(header) {
  const need = (cond, what) => {
    if (!cond) throw fail('message', `message header: ${what}`);
  };
  need(isObject(header) && hasExactly(header, HEADER_KEYS), 'unexpected or missing members');
  need(header.suite === SUITE && header.type === 'message', 'wrong suite or type');
  try {
    checkId(header.group, 'group');
    checkId(header.author, 'author');
    b64urlDecode(header.id, { length: 16, what: 'id' });
    b64urlDecode(header.by, { length: 32, what: 'by' });
    b64urlDecode(header.kc, { length: 32, what: 'kc' });
    b64urlDecode(header.nonce, { length: 12, what: 'nonce' });
    if (header.parent !== null) b64urlDecode(header.parent, { length: 16, what: 'parent' });
  } catch (err) {
    throw fail('message', `message header: ${err.message}`, err);
  }
  need(KINDS.includes(header.kind), 'unknown kind');
  if (header.kind !== 'alert') {
    // An alert's parent is its thread's first alert, or null (spec §7).
    need((header.parent === null) === TOP_KINDS.includes(header.kind), 'posts, conversations and absence notes have no parent; replies have one');
  }
  need(!RECIPIENT_KINDS.includes(header.kind) || header.to !== null, `a message of kind ${header.kind} is sealed to its recipients`);
  need(isInt(header.version) && header.version >= 1, 'version must be a positive integer');
  need(isInt(header.at), "'at' must be an integer");
  const { epoch, to } = header;
  need((epoch === null) !== (to === null), 'exactly one of epoch and to');
  if (epoch !== null) {
    need(isInt(epoch) && epoch >= 0, 'epoch must be a non-negative integer');
  } else {
    need(Array.isArray(to) && to.length >= 1 && to.length <= MAX_RECIPIENTS, `to must list 1-${MAX_RECIPIENTS} members`);
    for (const member of to) checkId(member, 'message header: recipient', 'message');
    need(equalLists(to, sortedStrings(new Set(to))), 'to must be sorted and without duplicates');
  }
  need(header.kind !== 'alert' || to === null, 'an alert is sent to the whole group under its epoch key, never to chosen recipients');
  return header;
}

/** Check the author's signature against the key named in the header (`by`); never throws. */
export async function verifyMessageSignature(wire) {
  let header;
  let ct;
  try {
    if (!isObject(wire)) return false;
    header = checkHeader(wire.header);
    ct = b64urlDecode(wire.ct, { what: 'ct' });
    if (typeof wire.sig !== 'string') return false;
    return await verifyObject(b64urlDecode(header.by), CONTEXT_MESSAGE, await signedPart(header, ct), wire.sig);
  } catch {
    return false;
  }
}

/**
 * True if the verified log gives `header.by` to `header.author` (now or
 * earlier), or, for a teacher, if `by` is an admin key (spec §5).
 */
export function authorIsMember(state, header) {
  if (state.signerIsMember(header.author, header.by)) return true;
  const m = state.members.get(header.author);
  return m !== undefined && m.role === 'teacher' && state.admins.includes(header.by);
}

/**
 * Throws code "message" unless an alert is signed by an emergency-role key
 * (spec §7): `header.by` is one of the admins of the alert's epoch (those in
 * force when its rotate was applied, not the current list) AND the log gives
 * that key to `header.author` with the role admin. Any other member's
 * signature (a guardian's, even a valid one), or a key dropped from the admins
 * before that epoch, is refused.
 */
export function checkAlertSigner(state, header) {
  if (!isObject(header) || header.kind !== 'alert') throw fail('message', 'this is not an alert');
  if (header.group !== state.group) throw fail('message', 'this alert was sent to another group');
  const admins = state.epochAdmins(header.epoch);
  if (admins === null) throw fail('message', "alert refused: the group's log has no such epoch");
  if (!admins.includes(header.by)) {
    throw fail('message', "alert refused: not signed by one of the school's emergency-role keys of its epoch");
  }
  const m = typeof header.author === 'string' ? state.members.get(header.author) : undefined;
  if (m === undefined || m.role !== 'admin') throw fail('message', 'alert refused: its author is not a school admin of this group');
  if (!state.signerIsMember(m.member, header.by)) {
    throw fail('message', "alert refused: the group's log does not give this key to its author");
  }
}

/** Number of Unicode code points (Python's len), not UTF-16 units. */
function codePoints(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * A decrypted alert body if it is exactly {template, text, drill} (spec §7):
 * template one of ALERT_TEMPLATES, text 0-2000 characters (code points; not
 * empty for "free"), drill true or false. Throws code "message".
 */
export function checkAlertBody(body) {
  if (!isObject(body) || !hasExactly(body, ['template', 'text', 'drill'])) {
    throw fail('message', 'alert body: exactly template, text and drill');
  }
  if (typeof body.template !== 'string' || !ALERT_TEMPLATES.includes(body.template)) throw fail('message', 'alert body: unknown template');
  if (typeof body.text !== 'string' || codePoints(body.text) > ALERT_TEXT_MAX) {
    throw fail('message', `alert body: text must be a string of at most ${ALERT_TEXT_MAX} characters`);
  }
  if (body.template === 'free' && body.text === '') throw fail('message', 'alert body: a free alert needs a text');
  if (typeof body.drill !== 'boolean') throw fail('message', 'alert body: drill must be true or false');
  return body;
}

/**
 * Verify the signature and key commitment, decrypt, and return the body.
 * Checks, in order: header structure and signature, (with `state`) that `by`
 * belongs to the author in the verified log (for an alert: checkAlertSigner),
 * the key commitment, GCM, the padding and strict JSON (for an alert:
 * checkAlertBody). Without `state` the caller must check
 * authorIsMember(state, wire.header) (or checkAlertSigner) itself. Throws code "message".
 */
export async function decryptMessage(wire, messageKey, { state = null } = {}) {
  if (!(await verifyMessageSignature(wire))) throw fail('message', "the author's signature does not verify");
  const header = wire.header;
  if (state !== null && header.kind === 'alert') {
    checkAlertSigner(state, header);
  } else if (state !== null && !authorIsMember(state, header)) {
    throw fail('message', "the author's key is not one the group's log gives them");
  }
  checkBytes(messageKey, 'message key');
  if ((await keyCommitment(messageKey, header.group, header.id)) !== header.kc) {
    throw fail('message', "the key does not match the message's key commitment");
  }
  const aeadKey = await hkdf(messageKey, EMPTY, AEAD_INFO, 32);
  let padded;
  try {
    padded = await aesGcmDecrypt(aeadKey, b64urlDecode(header.nonce, { length: 12 }), b64urlDecode(wire.ct), cj(header));
  } catch (err) {
    throw fail('message', 'the message was altered', err);
  }
  const plaintext = unpad(padded);
  let body;
  try {
    body = parseJsonStrict(plaintext);
  } catch (err) {
    throw fail('message', `the message body is not strict JSON: ${err.message}`, err);
  }
  if (!isObject(body)) throw fail('message', 'the message body is not an object');
  if (header.kind === 'alert') checkAlertBody(body);
  return body;
}

/**
 * An emergency alert from a school admin's page (spec §7) → the request
 * body's {message}. `state` is the verified school group, `epochKeys` a Map
 * (or object) epoch → key, `keys` = {sign: CryptoKey, signPk: Uint8Array};
 * `parent` is the thread's first alert for a follow-up (or the all clear).
 * Refuses, before sending, a body or signer that guardians would refuse.
 */
export async function encryptAlert(
  keys,
  me,
  state,
  epochKeys,
  { template, text = '', drill = false, parent = null, messageId = null, at = Math.floor(Date.now() / 1000), _nonceForTests } = {},
) {
  const body = checkAlertBody({ template, text, drill });
  const epoch = state.currentEpoch;
  if (epoch === null) throw fail('argument', 'the school group has no epoch yet');
  if (state.pendingRemovals.length) throw fail('epoch_key', 'a removal is waiting for a new epoch key');
  if (state.pendingAdmins) throw fail('epoch_key', 'an admin change is waiting for a new epoch key');
  const epochKey = epochKeys instanceof Map ? epochKeys.get(epoch.epoch) : epochKeys[epoch.epoch];
  if (!epochKey) throw fail('epoch_key', 'no key for the current epoch');
  const id = messageId || newMessageId();
  const message = await encryptMessage({
    signKey: keys.sign, signPk: keys.signPk, author: me, group: state.group, kind: 'alert', body,
    messageKey: await messageKeyFromEpoch(epochKey, state.group, epoch.epoch, id), epoch: epoch.epoch,
    parent, messageId: id, at, _nonceForTests,
  });
  checkAlertSigner(state, message.header);
  return { message };
}

/**
 * Change who may sign alerts (spec §2 `admins`, §7), from an admin's page: the
 * `admins` entry then a `rotate` (a cut: the school group is from_join) sealed
 * to every active member → {entries: [admins, rotate], envelopes, epochKey}.
 * `state` is the verified log (its head is where the entries go), `keys` =
 * {sign: CryptoKey, signPk: Uint8Array} of a current admin, `newAdmins` a list
 * of signing public keys (Uint8Array). The entries are checked with
 * applyEntry before they are returned; `state` is not changed. Members with the
 * role admin whose key is dropped stay members (they get the new key) but
 * sign no alert in the new epoch.
 */
export async function changeAdmins(keys, state, newAdmins, { epochKey = null, at = Math.floor(Date.now() / 1000), _ikmEForTests } = {}) {
  if (state.currentEpoch === null) throw fail('argument', 'the group has no epoch yet');
  const key = epochKey ?? newEpochKey();
  checkBytes(key, 'epoch key', 32);
  const first = await makeEntry(keys.sign, keys.signPk, state.group, state.headSeq + 1, state.headHash, 'admins', adminsBody(newAdmins), at);
  // Check on a copy: the caller's state stays as it was until the node accepts the entries.
  const copy = Object.assign(Object.create(Object.getPrototypeOf(state)), state, {
    admins: [...state.admins],
    members: new Map([...state.members].map(([k, m]) => [k, { ...m, pastSignPks: new Set(m.pastSignPks) }])),
    epochs: [...state.epochs],
    pendingRemovals: [...state.pendingRemovals],
  });
  await applyEntry(copy, first);
  const number = copy.epochs.length;
  const to = copy.activeMembers();
  const rotate = await makeEntry(keys.sign, keys.signPk, state.group, copy.headSeq + 1, copy.headHash, 'rotate', await rotateBody(state.group, number, key, to, null), at);
  await applyEntry(copy, rotate);
  const envelopes = [];
  for (const mid of to) {
    const encPk = b64urlDecode(copy.members.get(mid).encPk, { length: 32, what: 'enc_pk' });
    const ikm = typeof _ikmEForTests === 'function' ? _ikmEForTests(mid) : undefined;
    envelopes.push(await sealEpochKey(state.group, number, key, mid, encPk, { _ikmEForTests: ikm }));
  }
  return { entries: [first, rotate], envelopes, epochKey: key };
}

/**
 * Open an alert as a guardian's page does → its body: header, emergency-role
 * signer (checkAlertSigner), epoch key, signature, key commitment, GCM, body
 * (checkAlertBody). `item` is {message} as the node serves it. Throws code
 * "message" (refused) or "epoch_key" (no key: sent before you were added).
 */
export async function decryptAlert(item, state, epochKeys) {
  const wire = isObject(item) ? item.message : undefined;
  const header = checkHeader(isObject(wire) ? wire.header : undefined);
  if (header.kind !== 'alert') throw fail('message', 'this is not an alert');
  checkAlertSigner(state, header);
  const epochKey = epochKeys instanceof Map ? epochKeys.get(header.epoch) : epochKeys[header.epoch];
  if (!epochKey) throw fail('epoch_key', 'no key for this alert (sent before you were added)');
  const messageKey = await messageKeyFromEpoch(epochKey, state.group, header.epoch, header.id);
  return decryptMessage(wire, messageKey, { state });
}

// ========================================================= §6 attachments

export function chunkCount(size) {
  return Math.max(1, Math.ceil(size / CHUNK_SIZE));
}

export function ciphertextSize(size) {
  return size + TAG * chunkCount(size);
}

/** Byte range [start, end) of chunk `index` inside the blob of a file of `size` bytes. */
export function chunkRange(size, index) {
  const start = index * (CHUNK_SIZE + TAG);
  return { start, end: start + Math.min(CHUNK_SIZE, size - index * CHUNK_SIZE) + TAG };
}

export function chunkNonce(prefix, index, final) {
  if (!(prefix instanceof Uint8Array) || prefix.length !== PREFIX_LEN || !Number.isSafeInteger(index) || index < 0 || index >= 2 ** 32) {
    throw fail('argument', 'bad chunk prefix or index');
  }
  const nonce = new Uint8Array(12);
  nonce.set(prefix);
  new DataView(nonce.buffer).setUint32(PREFIX_LEN, index, false);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

export function attachmentAad(size) {
  return cj({ size, suite: SUITE, type: 'attachment' });
}

/** A fresh {key, prefix}; never reuse one for another file or an edit. */
export function newFileKey() {
  return { key: randomBytes(32), prefix: randomBytes(PREFIX_LEN) };
}

function checkSize(size) {
  if (!Number.isSafeInteger(size) || size < 0) throw fail('attachment', 'the file size must be a non-negative integer');
  return size;
}

async function importFileKey(key, usage) {
  checkBytes(key, 'file key', 32);
  return subtle().importKey('raw', key, 'AES-GCM', false, [usage]);
}

const isBlob = (data) => typeof Blob !== 'undefined' && data instanceof Blob;

async function readRange(data, start, end) {
  if (data instanceof Uint8Array) return data.subarray(start, end);
  return new Uint8Array(await data.slice(start, end).arrayBuffer());
}

function dataSize(data) {
  if (data instanceof Uint8Array) return data.length;
  if (isBlob(data)) return data.size;
  throw fail('argument', 'file data must be a Uint8Array or a Blob');
}

/**
 * Encrypt a Uint8Array or a Blob/File chunk by chunk: yields the encrypted
 * chunks (Uint8Array) in order, reading a Blob one 64 KiB slice at a time,
 * so a large file can be uploaded progressively.
 */
export async function* encryptChunks(key, prefix, data) {
  const size = dataSize(data);
  checkBytes(prefix, 'prefix', PREFIX_LEN);
  const k = await importFileKey(key, 'encrypt');
  const aad = attachmentAad(size);
  const count = chunkCount(size);
  for (let index = 0; index < count; index++) {
    const start = index * CHUNK_SIZE;
    const end = Math.min(size, start + CHUNK_SIZE);
    const chunk = await readRange(data, start, end);
    if (chunk.length !== end - start) throw fail('argument', 'the file changed while it was read');
    const iv = chunkNonce(prefix, index, index === count - 1);
    yield new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, k, chunk));
  }
}

/** The whole encrypted blob of a Uint8Array (or Blob). */
export async function encryptFile(key, prefix, data) {
  const out = new Uint8Array(ciphertextSize(dataSize(data)));
  let offset = 0;
  for await (const chunk of encryptChunks(key, prefix, data)) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

async function decryptChunkWith(k, prefix, size, index, chunk) {
  const count = chunkCount(size);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw fail('attachment', 'chunk index out of range');
  checkBytes(chunk, 'chunk');
  if (chunk.length !== Math.min(CHUNK_SIZE, size - index * CHUNK_SIZE) + TAG) {
    throw fail('attachment', `chunk ${index} is truncated or too long`);
  }
  try {
    const iv = chunkNonce(prefix, index, index === count - 1);
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv, additionalData: attachmentAad(size), tagLength: 128 }, k, chunk));
  } catch (err) {
    throw fail('attachment', `chunk ${index} was altered or moved`, err);
  }
}

/** Decrypt chunk `index` of a file of `size` bytes (for ranged reads); throws code "attachment". */
export async function decryptChunk(key, prefix, size, index, chunk) {
  return decryptChunkWith(await importFileKey(key, 'decrypt'), prefix, checkSize(size), index, chunk);
}

/** Decrypt a whole blob (Uint8Array or Blob) of a file of `size` bytes; throws code "attachment". */
export async function decryptFile(key, prefix, size, blob) {
  checkSize(size);
  const k = await importFileKey(key, 'decrypt');
  if (dataSize(blob) !== ciphertextSize(size)) throw fail('attachment', 'the file is truncated or has extra bytes');
  const out = new Uint8Array(size);
  for (let i = 0; i < chunkCount(size); i++) {
    const { start, end } = chunkRange(size, i);
    out.set(await decryptChunkWith(k, prefix, size, i, await readRange(blob, start, end)), i * CHUNK_SIZE);
  }
  return out;
}

/** base64url SHA-256 of bytes (the descriptor's ct_sha256). */
export async function sha256B64(data) {
  checkBytes(data, 'data');
  return b64urlEncode(await sha256(data));
}
