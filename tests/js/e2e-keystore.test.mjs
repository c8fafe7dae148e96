// keystore.js is browser-only; these tests drive it through a minimal
// in-memory IndexedDB stand-in (structured clone included) to check the
// promise plumbing, validation and the persistence report.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';

import * as ks from '../../web/static/js/e2e/keystore.js';
import { generateAccountKeys, importAccountKeys, signObject, verifyObject } from '../../web/static/js/e2e/suite.js';

function fakeIndexedDB() {
  const dbs = new Map();
  const later = (fn) => setTimeout(fn, 0);
  const request = () => ({ onsuccess: null, onerror: null, result: undefined, error: null });
  return {
    dbs,
    open(name) {
      const req = { ...request(), onupgradeneeded: null, onblocked: null };
      later(() => {
        const fresh = !dbs.has(name);
        if (fresh) dbs.set(name, new Map());
        const stores = dbs.get(name);
        const db = {
          objectStoreNames: { contains: (s) => stores.has(s) },
          createObjectStore: (s) => stores.set(s, new Map()),
          close() {},
          transaction(storeName, mode) {
            const tx = { oncomplete: null, onerror: null, onabort: null, error: null };
            const data = stores.get(storeName);
            let pending = 0;
            const op = (fn) => {
              const r = request();
              pending++;
              later(() => {
                r.result = fn();
                r.onsuccess && r.onsuccess();
                if (--pending === 0) later(() => tx.oncomplete && tx.oncomplete());
              });
              return r;
            };
            const writable = () => {
              if (mode !== 'readwrite') throw new Error('ReadOnlyError');
            };
            tx.objectStore = () => ({
              put: (value, key) => (writable(), op(() => (data.set(key, structuredClone(value)), key))),
              get: (key) => op(() => (data.has(key) ? structuredClone(data.get(key)) : undefined)),
              delete: (key) => (writable(), op(() => void data.delete(key))),
              clear: () => (writable(), op(() => void data.clear())),
            });
            return tx;
          },
        };
        req.result = db;
        if (fresh && req.onupgradeneeded) req.onupgradeneeded();
        req.onsuccess && req.onsuccess();
      });
      return req;
    },
  };
}

let persistCalls;
beforeEach(() => {
  globalThis.indexedDB = fakeIndexedDB();
  persistCalls = 0;
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { storage: { persisted: async () => false, persist: async () => (persistCalls++, false) } },
  });
});

test('save, load, use, delete and wipe non-extractable account keys', async () => {
  const keys = await importAccountKeys(await generateAccountKeys());
  const report = await ks.saveAccountKeys('https://ecole.example|42', keys);
  assert.deepEqual(report, { persisted: false, persistError: null });
  assert.equal(persistCalls, 1);
  const loaded = await ks.loadAccountKeys('https://ecole.example|42');
  assert.equal(loaded.suite, 'carnet-e2e-1');
  assert.equal(loaded.sign.extractable, false);
  assert.deepEqual(loaded.signPk, keys.signPk);
  const sig = await signObject(loaded.sign, 'carnet-e2e-1/test', { ok: true });
  assert.equal(await verifyObject(keys.signPk, 'carnet-e2e-1/test', { ok: true }, sig), true);
  assert.equal(await ks.loadAccountKeys('https://ecole.example|43'), null);
  await ks.deleteAccountKeys('https://ecole.example|42');
  assert.equal(await ks.loadAccountKeys('https://ecole.example|42'), null);
  await ks.saveAccountKeys('a|1', keys);
  await ks.saveAccountKeys('a|2', keys);
  await ks.wipeAll();
  assert.equal(await ks.loadAccountKeys('a|1'), null);
  assert.equal(await ks.loadAccountKeys('a|2'), null);
});

test('extractable keys and bad arguments are refused before touching storage', async () => {
  const raw = await generateAccountKeys();
  const extractable = await importAccountKeys(raw, { extractable: true });
  await assert.rejects(ks.saveAccountKeys('a|1', extractable), (err) => err.code === 'extractable');
  const keys = await importAccountKeys(raw);
  await assert.rejects(ks.saveAccountKeys('', keys), (err) => err.code === 'argument');
  await assert.rejects(ks.saveAccountKeys('a|1', { ...keys, sign: keys.enc }), (err) => err.code === 'argument');
  await assert.rejects(ks.saveAccountKeys('a|1', { ...keys, encPk: new Uint8Array(31) }), (err) => err.code === 'argument');
  assert.equal(globalThis.indexedDB.dbs.size, 0);
});

test('persistence: granted, unavailable, and errors reported rather than swallowed', async () => {
  const keys = await importAccountKeys(await generateAccountKeys());
  navigator.storage.persisted = async () => true;
  assert.equal((await ks.saveAccountKeys('a|1', keys)).persisted, true);
  navigator.storage.persisted = async () => false;
  navigator.storage.persist = async () => {
    throw new Error('boom');
  };
  const report = await ks.saveAccountKeys('a|1', keys);
  assert.equal(report.persistError.message, 'boom');
  assert.notEqual(await ks.loadAccountKeys('a|1'), null);
  Object.defineProperty(globalThis, 'navigator', { configurable: true, value: {} });
  assert.equal(await ks.requestPersistentStorage(), null);
  delete globalThis.indexedDB;
  await assert.rejects(ks.loadAccountKeys('a|1'), (err) => err.code === 'unsupported');
});
