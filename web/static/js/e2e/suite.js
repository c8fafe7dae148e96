// carnet-e2e-1: the browser side of Carnet's end-to-end encryption suite.
//
// WebCrypto only (Ed25519, X25519, HMAC/HKDF-SHA256, PBKDF2, AES-GCM), no
// third-party code, no imports: it runs unchanged in browsers and Node >= 20.
// Specification: docs/protocol/e2e-suite.md. The Python reference client is
// node/e2e; both are checked against tests/vectors/e2e-suite.json.
//
// Conventions: bytes are Uint8Array; every binary field on the wire is
// base64url without padding; everything signed or used as associated data is
// canonical JSON (RFC 8785, integers only). Errors are Error objects with a
// stable `.code` and a readable message.

export const SUITE = 'carnet-e2e-1';
export const MIN_ITERATIONS = 600000;
export const MAX_ITERATIONS = 10000000;
export const CONTEXT_ACCOUNT_KEYS = 'carnet-e2e-1/account-keys';
export const MAX_DEPTH = 64;

const SALT_LEN = 16;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const RECOVERY_KEY_BYTES = 20;
const MIN_PASSPHRASE_CHARS = 12;
const MAX_PASSPHRASE_BYTES = 1024;
const KDF_NAME = 'PBKDF2-SHA256';
const WRAP_KINDS = ['passphrase', 'recovery'];
const WHITESPACE = new Set(
  '\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680' +
    '\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a' +
    '\u2028\u2029\u202f\u205f\u3000',
);
const ED25519_PKCS8 = hexToBytes('302e020100300506032b657004220420');
const X25519_PKCS8 = hexToBytes('302e020100300506032b656e04220420');
const X25519_BASEPOINT = (() => {
  const b = new Uint8Array(32);
  b[0] = 9;
  return b;
})();

function fail(code, message) {
  const err = new Error(message);
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

// ---------------------------------------------------------------- bytes & text

function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-fA-F]/.test(hex)) {
    throw fail('encoding', 'invalid hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function i2osp(n, w) {
  const out = new Uint8Array(w);
  for (let i = w - 1; i >= 0 && n > 0; i--) {
    out[i] = n % 256;
    n = Math.floor(n / 256);
  }
  return out;
}

function isWellFormed(s) {
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

/** UTF-8 bytes of a string; lone surrogates are an error (not U+FFFD). */
export function utf8(text) {
  if (typeof text !== 'string') throw fail('argument', 'utf8() expects a string');
  if (!isWellFormed(text)) throw fail('encoding', 'string contains a lone surrogate');
  return new TextEncoder().encode(text);
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** Base64url without padding. */
export function b64urlEncode(bytes) {
  checkBytes(bytes, 'b64urlEncode input');
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += B64[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/**
 * Strict base64url decoding: no padding, only the URL-safe alphabet, a
 * possible length and zero trailing bits (exactly one text per byte string).
 * `length` (optional) is the exact decoded length required.
 */
export function b64urlDecode(text, { length, what = 'value' } = {}) {
  if (typeof text !== 'string') throw fail('encoding', `${what}: expected a base64url string`);
  if (text.includes('=')) throw fail('encoding', `${what}: base64url must not be padded`);
  for (const c of text) {
    if (!B64_INDEX.has(c)) throw fail('encoding', `${what}: character outside the base64url alphabet`);
  }
  if (text.length % 4 === 1) throw fail('encoding', `${what}: impossible base64url length ${text.length}`);
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const c of text) {
    acc = ((acc << 6) | B64_INDEX.get(c)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (bits && acc & ((1 << bits) - 1)) {
    throw fail('encoding', `${what}: non-canonical base64url (trailing bits are not zero)`);
  }
  if (length !== undefined && out.length !== length) {
    throw fail('encoding', `${what}: expected ${length} bytes, got ${out.length}`);
  }
  return out;
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function b32Encode(bytes) {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(acc >> bits) & 31];
    }
  }
  if (bits) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

function b32Decode(text) {
  const out = [];
  let acc = 0;
  let bits = 0;
  for (const c of text) {
    const v = B32.indexOf(c);
    if (v < 0) throw fail('encoding', `invalid base32 character ${JSON.stringify(c)}`);
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (bits && acc & ((1 << bits) - 1)) throw fail('encoding', 'non-canonical base32');
  return new Uint8Array(out);
}

function group(text, size, sep) {
  const parts = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return parts.join(sep);
}

// -------------------------------------------------------------- canonical JSON

function escapeString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const c = s.charCodeAt(i);
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

function canonicalize(value, depth) {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw fail('canonical_json', `only safe integers are allowed in canonical JSON (got ${value})`);
    }
    return String(value); // String(-0) === "0"
  }
  if (typeof value === 'string') {
    if (!isWellFormed(value)) throw fail('canonical_json', 'string contains a lone surrogate');
    return escapeString(value);
  }
  if (depth >= MAX_DEPTH) throw fail('canonical_json', `nesting deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) {
    const parts = [];
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw fail('canonical_json', 'sparse arrays are not allowed');
      parts.push(canonicalize(value[i], depth + 1));
    }
    return '[' + parts.join(',') + ']';
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw fail('canonical_json', 'only plain objects are allowed in canonical JSON');
    }
    const keys = Object.keys(value);
    for (const k of keys) {
      if (!isWellFormed(k)) throw fail('canonical_json', 'object key contains a lone surrogate');
    }
    keys.sort(); // default sort compares UTF-16 code units, as RFC 8785 requires
    return '{' + keys.map((k) => escapeString(k) + ':' + canonicalize(value[k], depth + 1)).join(',') + '}';
  }
  throw fail('canonical_json', `type ${typeof value} is not allowed in canonical JSON`);
}

/** RFC 8785 canonical JSON of a value made of plain objects, arrays, strings, safe integers, booleans and null. */
export function canonicalJson(value) {
  return canonicalize(value, 0);
}

// ------------------------------------------------------------------ primitives

async function hmacSha256(key, data) {
  // An empty HMAC key equals 32 zero bytes (keys are zero-padded to the block
  // size); some browsers refuse zero-length HMAC keys, so use the latter.
  const k = await subtle().importKey('raw', key.length ? key : new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', k, data));
}

async function hkdfExtract(salt, ikm) {
  return hmacSha256(salt, ikm);
}

async function hkdfExpand(prk, info, length) {
  if (!(length > 0 && length <= 255 * 32)) throw fail('argument', 'HKDF-Expand length out of range');
  const out = new Uint8Array(length);
  let block = new Uint8Array(0);
  for (let i = 1, o = 0; o < length; i++) {
    block = await hmacSha256(prk, concatBytes(block, info, Uint8Array.of(i)));
    out.set(block.subarray(0, Math.min(32, length - o)), o);
    o += 32;
  }
  return out;
}

async function hkdf(ikm, salt, info, length) {
  return hkdfExpand(await hkdfExtract(salt, ikm), info, length);
}

async function pbkdf2(password, salt, iterations, length = 32) {
  const k = await subtle().importKey('raw', password, 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle().deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, k, length * 8);
  return new Uint8Array(bits);
}

async function aesGcmEncrypt(key, nonce, plaintext, aad) {
  checkBytes(nonce, 'AES-GCM nonce', NONCE_LEN);
  const k = await subtle().importKey('raw', key, 'AES-GCM', false, ['encrypt']);
  return new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, plaintext));
}

async function aesGcmDecrypt(key, nonce, ciphertext, aad) {
  checkBytes(nonce, 'AES-GCM nonce', NONCE_LEN);
  const k = await subtle().importKey('raw', key, 'AES-GCM', false, ['decrypt']);
  try {
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, k, ciphertext));
  } catch {
    throw fail('aead', 'AES-GCM authentication failed');
  }
}

async function importX25519Private(sk, extractable = false) {
  checkBytes(sk, 'X25519 private key', 32);
  return subtle().importKey('pkcs8', concatBytes(X25519_PKCS8, sk), { name: 'X25519' }, extractable, ['deriveBits']);
}

async function x25519Dh(privateKey, publicBytes) {
  checkBytes(publicBytes, 'X25519 public key', 32);
  const pub = await subtle().importKey('raw', publicBytes, { name: 'X25519' }, true, []);
  let shared;
  try {
    shared = new Uint8Array(await subtle().deriveBits({ name: 'X25519', public: pub }, privateKey, 256));
  } catch {
    throw fail('dh', 'X25519 failed (low-order public key?)');
  }
  if (shared.every((b) => b === 0)) throw fail('dh', 'X25519 produced an all-zero shared secret');
  return shared;
}

/** X25519 public key of a private CryptoKey or raw scalar: DH with the base point. */
async function x25519PublicFromPrivate(sk) {
  const key = sk instanceof Uint8Array ? await importX25519Private(sk) : sk;
  return x25519Dh(key, X25519_BASEPOINT);
}

async function importEd25519Private(seed, extractable = false) {
  checkBytes(seed, 'Ed25519 seed', 32);
  return subtle().importKey('pkcs8', concatBytes(ED25519_PKCS8, seed), { name: 'Ed25519' }, extractable, ['sign']);
}

async function ed25519PublicFromSeed(seed) {
  const jwk = await subtle().exportKey('jwk', await importEd25519Private(seed, true));
  return b64urlDecode(jwk.x, { length: 32, what: 'jwk.x' });
}

async function ed25519SignWithSeed(seed, message) {
  return new Uint8Array(await subtle().sign({ name: 'Ed25519' }, await importEd25519Private(seed), message));
}

// ---------------------------------------------------------------- account keys

/** Fresh account keys as raw bytes: {signSk (Ed25519 seed), signPk, encSk (X25519), encPk}. */
export async function generateAccountKeys() {
  const s = await subtle().generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const e = await subtle().generateKey({ name: 'X25519' }, true, ['deriveBits']);
  const sj = await subtle().exportKey('jwk', s.privateKey);
  const ej = await subtle().exportKey('jwk', e.privateKey);
  return {
    signSk: b64urlDecode(sj.d, { length: 32 }),
    signPk: b64urlDecode(sj.x, { length: 32 }),
    encSk: b64urlDecode(ej.d, { length: 32 }),
    encPk: b64urlDecode(ej.x, { length: 32 }),
  };
}

async function checkRawKeys(raw) {
  if (!raw || typeof raw !== 'object') throw fail('argument', 'account keys must be an object');
  checkBytes(raw.signSk, 'signSk', 32);
  checkBytes(raw.encSk, 'encSk', 32);
  const signPk = await ed25519PublicFromSeed(raw.signSk);
  const encPk = await x25519PublicFromPrivate(raw.encSk);
  if (raw.signPk !== undefined && !equalBytes(checkBytes(raw.signPk, 'signPk', 32), signPk)) {
    throw fail('key_mismatch', 'signPk does not match signSk');
  }
  if (raw.encPk !== undefined && !equalBytes(checkBytes(raw.encPk, 'encPk', 32), encPk)) {
    throw fail('key_mismatch', 'encPk does not match encSk');
  }
  return { signSk: raw.signSk, signPk, encSk: raw.encSk, encPk };
}

/**
 * Import raw account keys as CryptoKeys for daily use (non-extractable by
 * default). Returns {sign, enc, signPk, encPk}; the public keys are checked
 * against the private ones.
 */
export async function importAccountKeys(raw, { extractable = false } = {}) {
  const k = await checkRawKeys(raw);
  const sign = await subtle().importKey(
    'jwk',
    { kty: 'OKP', crv: 'Ed25519', d: b64urlEncode(k.signSk), x: b64urlEncode(k.signPk) },
    { name: 'Ed25519' },
    extractable,
    ['sign'],
  );
  const enc = await subtle().importKey(
    'jwk',
    { kty: 'OKP', crv: 'X25519', d: b64urlEncode(k.encSk), x: b64urlEncode(k.encPk) },
    { name: 'X25519' },
    extractable,
    ['deriveBits'],
  );
  return { sign, enc, signPk: k.signPk, encPk: k.encPk };
}

/** "3F2A 91C0 …": SHA-256("carnet-e2e-1/fingerprint\0" || signPk)[:16], upper-case hex. */
export async function fingerprint(signPk) {
  checkBytes(signPk, 'signPk', 32);
  const digest = new Uint8Array(await subtle().digest('SHA-256', concatBytes(utf8('carnet-e2e-1/fingerprint\0'), signPk)));
  return group(bytesToHex(digest.subarray(0, 16)).toUpperCase(), 4, ' ');
}

function signedMessage(context, obj) {
  if (typeof context !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(context)) {
    throw fail('argument', 'signature context must be 1-128 printable ASCII characters, no spaces');
  }
  return concatBytes(utf8(context), Uint8Array.of(0), utf8(canonicalJson(obj)));
}

/** Ed25519 signature (base64url) over context || 0x00 || canonicalJson(obj). */
export async function signObject(signKey, context, obj) {
  if (!signKey || signKey.type !== 'private' || signKey.algorithm?.name !== 'Ed25519') {
    throw fail('argument', 'signObject needs a private Ed25519 CryptoKey');
  }
  const message = signedMessage(context, obj);
  return b64urlEncode(new Uint8Array(await subtle().sign({ name: 'Ed25519' }, signKey, message)));
}

/** True only for a valid signature; malformed signatures or keys give false. */
export async function verifyObject(signPk, context, obj, signature) {
  const message = signedMessage(context, obj);
  let sig;
  try {
    sig = b64urlDecode(signature, { length: 64 });
  } catch {
    return false;
  }
  if (!(signPk instanceof Uint8Array) || signPk.length !== 32) return false;
  try {
    const key = await subtle().importKey('raw', signPk, { name: 'Ed25519' }, false, ['verify']);
    return await subtle().verify({ name: 'Ed25519' }, key, sig, message);
  } catch {
    return false;
  }
}

function accountKeysStatement(signPk, encPk, login) {
  checkBytes(signPk, 'signPk', 32);
  checkBytes(encPk, 'encPk', 32);
  if (typeof login !== 'string' || !login) throw fail('argument', 'login must be a non-empty string');
  return { enc_pk: b64urlEncode(encPk), login, sign_pk: b64urlEncode(signPk) };
}

/** Registration proof of possession: signs {enc_pk, login, sign_pk} under "carnet-e2e-1/account-keys". */
export async function accountKeysProof(signKey, signPk, encPk, login) {
  const statement = accountKeysStatement(signPk, encPk, login);
  const proof = await signObject(signKey, CONTEXT_ACCOUNT_KEYS, statement);
  // The CryptoKey is non-extractable, so check the pairing by verifying.
  if (!(await verifyObject(signPk, CONTEXT_ACCOUNT_KEYS, statement, proof))) {
    throw fail('key_mismatch', 'the signing key does not match signPk');
  }
  return proof;
}

export async function verifyAccountKeysProof(signPk, encPk, login, signature) {
  let statement;
  try {
    statement = accountKeysStatement(signPk, encPk, login);
    return await verifyObject(signPk, CONTEXT_ACCOUNT_KEYS, statement, signature);
  } catch {
    return false;
  }
}

// ------------------------------------------------- passphrase and recovery key

/** Apply the passphrase policy; returns the NFC form or throws (code: too_short, too_long, blank, invalid_text, not_string). */
export function checkPassphrase(passphrase) {
  if (typeof passphrase !== 'string') throw fail('not_string', 'The passphrase must be text.');
  if (!isWellFormed(passphrase)) throw fail('invalid_text', 'The passphrase contains invalid characters.');
  const nfc = passphrase.normalize('NFC');
  const chars = [...nfc].length;
  if (chars < MIN_PASSPHRASE_CHARS) {
    throw fail('too_short', `The passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters (it has ${chars}).`);
  }
  if (utf8(nfc).length > MAX_PASSPHRASE_BYTES) {
    throw fail('too_long', `The passphrase must not exceed ${MAX_PASSPHRASE_BYTES} bytes in UTF-8.`);
  }
  if ([...nfc].every((c) => WHITESPACE.has(c))) throw fail('blank', 'The passphrase must not be only spaces.');
  return nfc;
}

function checkIterations(iterations, unsafe) {
  const minimum = unsafe ? 1 : MIN_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < minimum || iterations > MAX_ITERATIONS) {
    throw fail('iterations', `PBKDF2 iterations must be an integer between ${minimum} and ${MAX_ITERATIONS}, got ${iterations}`);
  }
}

/**
 * {loginSecret, passphraseWrapKey} from PBKDF2-SHA256(NFC(passphrase), salt,
 * iterations) and HKDF. `_unsafeLowIterationsForTests` lowers the minimum to
 * 1 for test vectors; never set it in the app.
 */
export async function deriveFromPassphrase(passphrase, salt, iterations = MIN_ITERATIONS, { _unsafeLowIterationsForTests = false } = {}) {
  const nfc = checkPassphrase(passphrase);
  checkIterations(iterations, _unsafeLowIterationsForTests);
  checkBytes(salt, 'salt', SALT_LEN);
  const master = await pbkdf2(utf8(nfc), salt, iterations, 32);
  return {
    loginSecret: await hkdf(master, new Uint8Array(0), utf8('carnet-e2e-1/login-secret'), 32),
    passphraseWrapKey: await hkdf(master, new Uint8Array(0), utf8('carnet-e2e-1/vault-wrap/passphrase'), 32),
  };
}

/** 20 bytes → "ABCD-EFGH-…" (base32, 8 groups of 4). */
export function formatRecoveryKey(raw) {
  checkBytes(raw, 'recovery key', RECOVERY_KEY_BYTES);
  return group(b32Encode(raw), 4, '-');
}

/** Parse a typed recovery key: case-insensitive, spaces and dashes ignored, exactly 20 bytes. */
export function parseRecoveryKey(text) {
  if (typeof text !== 'string') throw fail('recovery_key', 'The recovery key must be text.');
  const compact = text.replace(/[ -]/g, '');
  if (compact.length !== 32) {
    throw fail('recovery_key', `A recovery key has 32 letters and digits (not counting dashes); got ${compact.length}.`);
  }
  if (!/^[A-Za-z2-7]{32}$/.test(compact)) {
    throw fail('recovery_key', 'The recovery key may only contain letters A-Z and digits 2-7.');
  }
  return b32Decode(compact.toUpperCase());
}

async function recoveryWrapKey(recovery) {
  checkBytes(recovery, 'recovery key', RECOVERY_KEY_BYTES);
  return hkdf(recovery, new Uint8Array(0), utf8('carnet-e2e-1/vault-wrap/recovery'), 32);
}

// ----------------------------------------------------------------------- vault

const VAULT_PLAINTEXT_LEN = 118; // canonical {"enc_sk":43 chars,"sign_sk":43 chars,"v":1}

function vaultAad(signPk, encPk) {
  return utf8(canonicalJson({ enc_pk: b64urlEncode(encPk), sign_pk: b64urlEncode(signPk), suite: SUITE, type: 'vault' }));
}

function wrapAad(kind, signPk) {
  return utf8(canonicalJson({ kind, sign_pk: b64urlEncode(signPk), suite: SUITE, type: 'vault-key' }));
}

function vaultFormatError(message) {
  return fail('vault_format', message);
}

function exactFields(obj, expected, where) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw vaultFormatError(`${where} must be a JSON object`);
  const keys = Object.keys(obj);
  const missing = expected.filter((k) => !keys.includes(k));
  const extra = keys.filter((k) => !expected.includes(k));
  if (missing.length || extra.length) {
    throw vaultFormatError(`${where}: missing fields [${missing}], unexpected fields [${extra}]`);
  }
}

function fieldBytes(obj, name, length, where) {
  try {
    return b64urlDecode(obj[name], { length, what: `${where}.${name}` });
  } catch (err) {
    throw vaultFormatError(err.message);
  }
}

/** Structure-only validation of a vault document (throws code "vault_format"). */
export function validateVaultDocument(doc, { _unsafeLowIterationsForTests = false } = {}) {
  exactFields(doc, ['suite', 'v', 'sign_pk', 'enc_pk', 'nonce', 'ct', 'wraps'], 'vault');
  if (doc.suite !== SUITE) throw vaultFormatError(`vault.suite must be "${SUITE}"`);
  if (doc.v !== 1) throw vaultFormatError('vault.v must be 1 (unknown vault version)');
  fieldBytes(doc, 'sign_pk', 32, 'vault');
  fieldBytes(doc, 'enc_pk', 32, 'vault');
  fieldBytes(doc, 'nonce', NONCE_LEN, 'vault');
  fieldBytes(doc, 'ct', VAULT_PLAINTEXT_LEN + TAG_LEN, 'vault');
  const wraps = doc.wraps;
  if (!Array.isArray(wraps) || wraps.length < 1 || wraps.length > WRAP_KINDS.length) {
    throw vaultFormatError('vault.wraps must be a list of 1 or 2 wraps');
  }
  const seen = new Set();
  wraps.forEach((wrap, i) => {
    const where = `vault.wraps[${i}]`;
    if (!wrap || typeof wrap !== 'object' || !WRAP_KINDS.includes(wrap.kind)) {
      throw vaultFormatError(`${where}.kind must be one of ${WRAP_KINDS.join(', ')}`);
    }
    if (seen.has(wrap.kind)) throw vaultFormatError(`${where}: duplicate ${wrap.kind} wrap`);
    seen.add(wrap.kind);
    if (wrap.kind === 'passphrase') {
      exactFields(wrap, ['kind', 'kdf', 'nonce', 'ct'], where);
      exactFields(wrap.kdf, ['name', 'iterations', 'salt'], `${where}.kdf`);
      if (wrap.kdf.name !== KDF_NAME) throw vaultFormatError(`${where}.kdf.name must be "${KDF_NAME}"`);
      try {
        checkIterations(wrap.kdf.iterations, _unsafeLowIterationsForTests);
      } catch (err) {
        throw vaultFormatError(`${where}.kdf: ${err.message}`);
      }
      fieldBytes(wrap.kdf, 'salt', SALT_LEN, `${where}.kdf`);
    } else {
      exactFields(wrap, ['kind', 'nonce', 'ct'], where);
    }
    fieldBytes(wrap, 'nonce', NONCE_LEN, where);
    fieldBytes(wrap, 'ct', 32 + TAG_LEN, where);
  });
  if (!seen.has('recovery')) throw vaultFormatError('vault.wraps must contain a recovery wrap');
}

async function createVaultDeterministic(rawKeys, { passphrase, salt, iterations = MIN_ITERATIONS, vk, nonce, passphraseNonce, recoveryNonce, recovery, _unsafeLowIterationsForTests = false }) {
  const keys = await checkRawKeys(rawKeys);
  checkBytes(vk, 'VK', 32);
  const secrets = await deriveFromPassphrase(passphrase, salt, iterations, { _unsafeLowIterationsForTests });
  const plaintext = utf8(canonicalJson({ enc_sk: b64urlEncode(keys.encSk), sign_sk: b64urlEncode(keys.signSk), v: 1 }));
  const ct = await aesGcmEncrypt(vk, nonce, plaintext, vaultAad(keys.signPk, keys.encPk));
  const pwCt = await aesGcmEncrypt(secrets.passphraseWrapKey, passphraseNonce, vk, wrapAad('passphrase', keys.signPk));
  const recCt = await aesGcmEncrypt(await recoveryWrapKey(recovery), recoveryNonce, vk, wrapAad('recovery', keys.signPk));
  const vault = {
    suite: SUITE,
    v: 1,
    sign_pk: b64urlEncode(keys.signPk),
    enc_pk: b64urlEncode(keys.encPk),
    nonce: b64urlEncode(nonce),
    ct: b64urlEncode(ct),
    wraps: [
      { kind: 'passphrase', kdf: { name: KDF_NAME, iterations, salt: b64urlEncode(salt) }, nonce: b64urlEncode(passphraseNonce), ct: b64urlEncode(pwCt) },
      { kind: 'recovery', nonce: b64urlEncode(recoveryNonce), ct: b64urlEncode(recCt) },
    ],
  };
  return { vault, recoveryKey: formatRecoveryKey(recovery), loginSecret: secrets.loginSecret };
}

/**
 * Create a vault for raw account keys. Returns {vault, recoveryKey,
 * loginSecret}: show the recovery key once, send loginSecret and the vault
 * to the node. `salt` defaults to 16 random bytes.
 */
export async function createVault(rawKeys, { passphrase, salt = randomBytes(SALT_LEN), iterations = MIN_ITERATIONS, _unsafeLowIterationsForTests = false } = {}) {
  return createVaultDeterministic(rawKeys, {
    passphrase,
    salt,
    iterations,
    vk: randomBytes(32),
    nonce: randomBytes(NONCE_LEN),
    passphraseNonce: randomBytes(NONCE_LEN),
    recoveryNonce: randomBytes(NONCE_LEN),
    recovery: randomBytes(RECOVERY_KEY_BYTES),
    _unsafeLowIterationsForTests,
  });
}

function findWrap(doc, kind) {
  const wrap = doc.wraps.find((w) => w.kind === kind);
  if (!wrap) throw fail('vault', `This vault cannot be opened with a ${kind}: it has no ${kind} wrap.`);
  return wrap;
}

async function unwrapVk(doc, kind, wrapKey, failure) {
  const wrap = findWrap(doc, kind);
  try {
    return await aesGcmDecrypt(wrapKey, b64urlDecode(wrap.nonce), b64urlDecode(wrap.ct), wrapAad(kind, b64urlDecode(doc.sign_pk)));
  } catch {
    throw fail('vault', failure);
  }
}

async function openWithVk(doc, vk) {
  const signPk = b64urlDecode(doc.sign_pk);
  const encPk = b64urlDecode(doc.enc_pk);
  let plaintext;
  try {
    plaintext = await aesGcmDecrypt(vk, b64urlDecode(doc.nonce), b64urlDecode(doc.ct), vaultAad(signPk, encPk));
  } catch {
    throw fail('vault', 'The vault was altered: its contents do not authenticate.');
  }
  let raw;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
    const body = JSON.parse(text);
    exactFields(body, ['enc_sk', 'sign_sk', 'v'], 'vault contents');
    if (body.v !== 1 || canonicalJson(body) !== text) throw new Error('unknown format');
    raw = { signSk: b64urlDecode(body.sign_sk, { length: 32 }), encSk: b64urlDecode(body.enc_sk, { length: 32 }) };
  } catch (err) {
    throw fail('vault', `The vault contents are malformed: ${err.message}`);
  }
  const keys = await checkRawKeys(raw);
  if (!equalBytes(keys.signPk, signPk) || !equalBytes(keys.encPk, encPk)) {
    throw fail('vault', "The vault's private keys do not match its public keys (swapped vault).");
  }
  return keys;
}

/** Open a vault with the passphrase → raw keys {signSk, signPk, encSk, encPk}; errors have code "vault" or "vault_format". */
export async function openVaultWithPassphrase(vault, passphrase, { _unsafeLowIterationsForTests = false } = {}) {
  validateVaultDocument(vault, { _unsafeLowIterationsForTests });
  const kdf = findWrap(vault, 'passphrase').kdf;
  const secrets = await deriveFromPassphrase(passphrase, b64urlDecode(kdf.salt), kdf.iterations, { _unsafeLowIterationsForTests });
  const vk = await unwrapVk(vault, 'passphrase', secrets.passphraseWrapKey, 'Wrong passphrase, or the vault was altered.');
  return openWithVk(vault, vk);
}

/** Open a vault with the recovery key → raw keys; errors have code "recovery_key", "vault" or "vault_format". */
export async function openVaultWithRecoveryKey(vault, recoveryKey, { _unsafeLowIterationsForTests = false } = {}) {
  validateVaultDocument(vault, { _unsafeLowIterationsForTests });
  const wrapKey = await recoveryWrapKey(parseRecoveryKey(recoveryKey));
  const vk = await unwrapVk(vault, 'recovery', wrapKey, 'Wrong recovery key, or the vault was altered.');
  return openWithVk(vault, vk);
}

// ------------------------------------------------------------ HPKE (RFC 9180)

const AEADS = {
  'AES-128-GCM': { id: 0x0001, nk: 16, nn: 12, nt: 16 },
  'AES-256-GCM': { id: 0x0002, nk: 32, nn: 12, nt: 16 },
};
const HPKE_VERSION = utf8('HPKE-v1');
const KEM_SUITE_ID = concatBytes(utf8('KEM'), i2osp(0x0020, 2));

function aeadParams(name) {
  const aead = AEADS[name];
  if (!aead) throw fail('argument', `unknown HPKE AEAD ${name}; use "AES-256-GCM" (or "AES-128-GCM" for RFC vectors)`);
  return aead;
}

function hpkeSuiteId(aead) {
  return concatBytes(utf8('HPKE'), i2osp(0x0020, 2), i2osp(0x0001, 2), i2osp(aead.id, 2));
}

async function labeledExtract(suiteId, salt, label, ikm) {
  return hkdfExtract(salt, concatBytes(HPKE_VERSION, suiteId, utf8(label), ikm));
}

async function labeledExpand(suiteId, prk, label, info, length) {
  return hkdfExpand(prk, concatBytes(i2osp(length, 2), HPKE_VERSION, suiteId, utf8(label), info), length);
}

async function deriveKeyPair(ikm) {
  checkBytes(ikm, 'ikm');
  if (ikm.length < 32) throw fail('argument', 'DeriveKeyPair needs at least 32 bytes of input keying material');
  const dkpPrk = await labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'dkp_prk', ikm);
  const sk = await labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', new Uint8Array(0), 32);
  return { sk, pk: await x25519PublicFromPrivate(sk) };
}

async function extractAndExpand(dh, kemContext) {
  const eaePrk = await labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'eae_prk', dh);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, 32);
}

async function encap(pkR, { ikmE } = {}) {
  checkBytes(pkR, 'recipient public key', 32);
  const { sk, pk: enc } = await deriveKeyPair(ikmE ?? randomBytes(32));
  const dh = await x25519Dh(await importX25519Private(sk), pkR);
  return { sharedSecret: await extractAndExpand(dh, concatBytes(enc, pkR)), enc };
}

async function decap(enc, skR) {
  checkBytes(enc, 'enc', 32);
  const key = skR instanceof Uint8Array ? await importX25519Private(skR) : skR;
  if (!key || key.type !== 'private' || key.algorithm?.name !== 'X25519') {
    throw fail('argument', 'skR must be 32 raw bytes or a private X25519 CryptoKey');
  }
  const dh = await x25519Dh(key, enc);
  const pkR = await x25519PublicFromPrivate(key);
  return extractAndExpand(dh, concatBytes(enc, pkR));
}

class HpkeContext {
  constructor(aead, key, baseNonce, exporterSecret, keyScheduleContext, secret) {
    Object.assign(this, { aead, key, baseNonce, exporterSecret, keyScheduleContext, secret, seq: 0 });
  }

  computeNonce(seq) {
    const s = i2osp(seq, this.aead.nn);
    return this.baseNonce.map((b, i) => b ^ s[i]);
  }

  async seal(aad, pt) {
    const ct = await aesGcmEncrypt(this.key, this.computeNonce(this.seq), pt, aad);
    this.seq += 1;
    return ct;
  }

  async open(aad, ct) {
    let pt;
    try {
      pt = await aesGcmDecrypt(this.key, this.computeNonce(this.seq), ct, aad);
    } catch {
      throw fail('hpke', 'HPKE open failed (wrong key, enc, info, aad or tampered ciphertext)');
    }
    this.seq += 1;
    return pt;
  }

  async export(exporterContext, length) {
    return labeledExpand(hpkeSuiteId(this.aead), this.exporterSecret, 'sec', exporterContext, length);
  }
}

async function keySchedule(sharedSecret, info, aead) {
  const suiteId = hpkeSuiteId(aead);
  const empty = new Uint8Array(0);
  const pskIdHash = await labeledExtract(suiteId, empty, 'psk_id_hash', empty);
  const infoHash = await labeledExtract(suiteId, empty, 'info_hash', info);
  const ksc = concatBytes(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = await labeledExtract(suiteId, sharedSecret, 'secret', empty);
  const key = await labeledExpand(suiteId, secret, 'key', ksc, aead.nk);
  const baseNonce = await labeledExpand(suiteId, secret, 'base_nonce', ksc, aead.nn);
  const exporterSecret = await labeledExpand(suiteId, secret, 'exp', ksc, 32);
  return new HpkeContext(aead, key, baseNonce, exporterSecret, ksc, secret);
}

async function setupBaseS(pkR, info, { aead = 'AES-256-GCM', ikmE } = {}) {
  const params = aeadParams(aead);
  checkBytes(info, 'info');
  const { sharedSecret, enc } = await encap(pkR, { ikmE });
  return { enc, context: await keySchedule(sharedSecret, info, params), sharedSecret };
}

async function setupBaseR(enc, skR, info, { aead = 'AES-256-GCM' } = {}) {
  const params = aeadParams(aead);
  checkBytes(info, 'info');
  return keySchedule(await decap(enc, skR), info, params);
}

async function hpkeSealDeterministic(pkR, info, aad, pt, { aead = 'AES-256-GCM', ikmE } = {}) {
  checkBytes(aad, 'aad');
  checkBytes(pt, 'plaintext');
  const { enc, context } = await setupBaseS(pkR, info, { aead, ikmE });
  return { enc, ct: await context.seal(aad, pt) };
}

/** HPKE base-mode single-shot Seal to an X25519 public key → {enc, ct}. */
export async function hpkeSeal(pkR, info, aad, pt, { aead = 'AES-256-GCM' } = {}) {
  return hpkeSealDeterministic(pkR, info, aad, pt, { aead });
}

/** HPKE base-mode single-shot Open; skR is a private X25519 CryptoKey or 32 raw bytes. Throws code "hpke" on failure. */
export async function hpkeOpen(skR, enc, info, aad, ct, { aead = 'AES-256-GCM' } = {}) {
  checkBytes(aad, 'aad');
  checkBytes(ct, 'ciphertext');
  let context;
  try {
    context = await setupBaseR(enc, skR, info, { aead });
  } catch (err) {
    if (err.code === 'argument') throw err;
    throw fail('hpke', `HPKE open failed: ${err.message}`);
  }
  return context.open(aad, ct);
}

/** Internal helpers for tests and vectors; not a stable API. */
export const _internal = {
  hexToBytes,
  bytesToHex,
  concatBytes,
  equalBytes,
  hkdfExtract,
  hkdfExpand,
  hkdf,
  pbkdf2,
  aesGcmEncrypt,
  aesGcmDecrypt,
  importX25519Private,
  x25519Dh,
  x25519PublicFromPrivate,
  ed25519PublicFromSeed,
  ed25519SignWithSeed,
  b32Encode,
  b32Decode,
  signedMessage,
  vaultAad,
  wrapAad,
  recoveryWrapKey,
  createVaultDeterministic,
  labeledExtract,
  labeledExpand,
  deriveKeyPair,
  encap,
  decap,
  keySchedule,
  setupBaseS,
  setupBaseR,
  hpkeSealDeterministic,
};
