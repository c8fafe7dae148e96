// Tell the guardian whether this browser holds their keys.
import { loadAccountKeys } from '../e2e/keystore.js';
import { keyStoreName, messages } from './common.js';

const state = document.getElementById('key-state');
if (state) {
  const msgs = messages();
  loadAccountKeys(keyStoreName(state.dataset.accountId)).then(
    (keys) => { state.textContent = keys ? msgs.keys_here : msgs.keys_missing; },
    () => { state.textContent = msgs.keys_missing; },
  );
}
