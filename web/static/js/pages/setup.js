// Staff setup link: choose a passphrase; keys and vault are made here.
import { api, busy, cryptoSupported, errorText, homeFor, messages, showError } from './common.js';
import { createAccountSecrets, readNewPassphrase, showRecovery, storeKeys } from './account-keys.js';

const section = document.getElementById('setup');
const form = document.getElementById('setup-form');
const msgs = messages();
const token = location.pathname.split('/').pop();

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
    const { credentials, recoveryKey, keys } = await createAccountSecrets(section.dataset.login, passphrase, iterations);
    const session = await api(`/setup/${encodeURIComponent(token)}`, credentials);
    await storeKeys(session.account.id, keys);
    form.hidden = true;
    showRecovery(recoveryKey, homeFor(session.account.role));
  } catch (err) {
    showError(form, errorText(err));
    busy(form, false, 'passphrase-progress');
  }
});
