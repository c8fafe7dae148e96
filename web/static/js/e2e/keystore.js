// Browser key store of carnet-e2e-1: non-extractable CryptoKeys in IndexedDB.
//
// Database "carnet-keys", object store "accounts", out-of-line string keys
// chosen by the caller (convention: `${origin}|${accountId}`). CryptoKey
// objects are structured-cloneable, so IndexedDB stores the keys themselves;
// because they are non-extractable, page script (including injected script)
// can use them but never read their bytes. The raw private keys live only
// inside the encrypted vault on the node.
//
// Browser only (needs indexedDB); every function returns a Promise.

export const DB_NAME = 'carnet-keys';
export const STORE = 'accounts';
const DB_VERSION = 1;

function fail(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

function idb() {
  const factory = globalThis.indexedDB;
  if (!factory) throw fail('unsupported', 'IndexedDB is not available in this browser (or in private mode).');
  return factory;
}

function checkKey(key) {
  if (typeof key !== 'string' || key.length === 0) {
    throw fail('argument', 'the key-store key must be a non-empty string such as `${origin}|${accountId}`');
  }
}

function openDb() {
  return new Promise((resolve, reject) => {
    const request = idb().open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error || fail('storage', 'could not open the key store'));
    request.onblocked = () => reject(fail('storage', 'the key store is blocked by another tab; close other Carnet tabs and retry'));
  });
}

// Run `work(store)` in one transaction; resolves with the value of the last
// request once the transaction has committed.
async function withStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      let result;
      const request = work(tx.objectStore(STORE));
      if (request) request.onsuccess = () => (result = request.result);
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error || fail('storage', 'key store transaction failed'));
      tx.onabort = () => reject(tx.error || fail('storage', 'key store transaction aborted'));
    });
  } finally {
    db.close();
  }
}

function checkCryptoKey(key, algorithm, what) {
  if (!key || typeof key !== 'object' || key.type !== 'private' || !key.algorithm || key.algorithm.name !== algorithm) {
    throw fail('argument', `${what} must be a private ${algorithm} CryptoKey`);
  }
  if (key.extractable !== false) {
    throw fail('extractable', `${what} is extractable; import it with importAccountKeys(raw, {extractable: false}) before storing`);
  }
}

function checkPublic(bytes, what) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw fail('argument', `${what} must be 32 bytes`);
}

/**
 * Ask the browser not to evict this origin's storage. Returns true/false, or
 * null where the Storage API is missing. A refusal (false) is normal and
 * harmless; other errors are thrown to the caller.
 */
export async function requestPersistentStorage() {
  const storage = globalThis.navigator && globalThis.navigator.storage;
  if (!storage || typeof storage.persist !== 'function') return null;
  if (typeof storage.persisted === 'function' && (await storage.persisted())) return true;
  return storage.persist();
}

/**
 * Store an account's daily-use keys ({sign, enc} non-extractable CryptoKeys
 * plus signPk, encPk bytes). Returns {persisted, persistError}: the keys are
 * saved either way; `persisted` is the result of requestPersistentStorage()
 * and `persistError` any error it raised (reported, not swallowed).
 */
export async function saveAccountKeys(key, { sign, enc, signPk, encPk } = {}) {
  checkKey(key);
  checkCryptoKey(sign, 'Ed25519', 'sign');
  checkCryptoKey(enc, 'X25519', 'enc');
  checkPublic(signPk, 'signPk');
  checkPublic(encPk, 'encPk');
  const record = { suite: 'carnet-e2e-1', sign, enc, signPk: new Uint8Array(signPk), encPk: new Uint8Array(encPk), savedAt: Date.now() };
  await withStore('readwrite', (store) => store.put(record, key));
  try {
    return { persisted: await requestPersistentStorage(), persistError: null };
  } catch (err) {
    return { persisted: false, persistError: err };
  }
}

/** The stored {sign, enc, signPk, encPk, savedAt, suite}, or null if none. */
export async function loadAccountKeys(key) {
  checkKey(key);
  const record = await withStore('readonly', (store) => store.get(key));
  return record === undefined ? null : record;
}

/** Remove one account's keys (logout / "forget this device"). */
export async function deleteAccountKeys(key) {
  checkKey(key);
  await withStore('readwrite', (store) => store.delete(key));
}

/** Remove every stored account key of this origin. */
export async function wipeAll() {
  await withStore('readwrite', (store) => store.clear());
}
