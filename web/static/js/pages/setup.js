// Staff setup link: choose a passphrase; keys and vault are made here.
import { openVaultWithRecoveryKey } from '../e2e/suite.js';
import { api, busy, cryptoSupported, errorText, homeFor, messages, showError, UserError } from './common.js';
import { createAccountSecrets, readNewPassphrase, showRecovery, storeKeys } from './account-keys.js';

const section = document.getElementById('setup');
const form = document.getElementById('setup-form');
const msgs = messages();
const token = location.pathname.split('/').pop();

/** A reset with the recovery key typed: the current keys, opened from the vault; else null. */
async function keysFromRecoveryKey() {
  const input = document.getElementById('recovery-key-input');
  if (!input || !input.value.trim()) return null;
  const vault = JSON.parse(document.getElementById('current-vault').textContent);
  try {
    return await openVaultWithRecoveryKey(vault, input.value);
  } catch {
    throw new UserError(msgs.wrong_recovery_key);
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(form, '');
  let passphrase;
  try {
    passphrase = readNewPassphrase(form.querySelector('#new-passphrase').value, form.querySelector('#new-passphrase2').value, msgs);
  } catch (err) {
    showError(form, errorText(err));
    return;
  }
  if (!(await cryptoSupported())) {
    showError(form, msgs.unsupported);
    return;
  }
  busy(form, true, 'passphrase-progress');
  try {
    const iterations = Number(section.dataset.iterations);
    const kept = await keysFromRecoveryKey();
    const { credentials, recoveryKey, keys } = await createAccountSecrets(section.dataset.login, passphrase, iterations, kept);
    const session = await api(`/setup/${encodeURIComponent(token)}`, credentials);
    await storeKeys(session.account.id, keys);
    form.hidden = true;
    showRecovery(recoveryKey, homeFor(session.account.role));
  } catch (err) {
    showError(form, errorText(err));
    busy(form, false, 'passphrase-progress');
  }
});

// Shown only now that submitting it runs the code above (before, the browser would send
// its fields to the server as a URL query).
form.hidden = false;
