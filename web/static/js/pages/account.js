// Change one's passphrase: open the vault with the current one, seal the same
// keys under the new one, and send the node the new vault and login secret.
import { accountKeysProof, b64urlDecode, b64urlEncode, createVault, importAccountKeys, openVaultWithPassphrase } from '../e2e/suite.js';
import { api, busy, errorText, messages, showError } from './common.js';
import { loginSecretFor, readNewPassphrase, showRecovery, storeKeys } from './account-keys.js';

const form = document.getElementById('change-passphrase');
const msgs = messages();

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(form, '');
  const current = form.querySelector('#current-passphrase').value;
  let next;
  try {
    next = readNewPassphrase(form.querySelector('#new-passphrase').value, form.querySelector('#new-passphrase2').value, msgs);
  } catch (err) {
    showError(form, errorText(err));
    return;
  }
  busy(form, true, 'passphrase-progress');
  try {
    const own = await api('/me/vault');
    const kdf = own.vault.wraps.find((w) => w.kind === 'passphrase').kdf;
    const currentSecret = await loginSecretFor(current, kdf.salt, kdf.iterations);
    let raw;
    try {
      raw = await openVaultWithPassphrase(own.vault, current);
    } catch {
      throw new Error(msgs.wrong_current);
    }
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const { vault, recoveryKey, loginSecret } = await createVault(raw, { passphrase: next, salt, iterations: kdf.iterations });
    const keys = await importAccountKeys(raw, { extractable: false });
    raw.signSk.fill(0);
    raw.encSk.fill(0);
    const credentials = {
      kdf_salt: b64urlEncode(salt),
      kdf_iterations: kdf.iterations,
      login_secret: b64urlEncode(loginSecret),
      sign_pk: own.vault.sign_pk,
      enc_pk: own.vault.enc_pk,
      vault,
      proof: await accountKeysProof(keys.sign, b64urlDecode(own.vault.sign_pk), b64urlDecode(own.vault.enc_pk), own.login),
    };
    await api('/me/passphrase', { current_login_secret: currentSecret, credentials });
    await storeKeys(form.closest('main').querySelector('#key-state').dataset.accountId, keys);
    form.hidden = true;
    showRecovery(recoveryKey, '/account');
  } catch (err) {
    showError(form, err.message === msgs.wrong_current ? msgs.wrong_current : errorText(err));
    busy(form, false, 'passphrase-progress');
  }
});

// Shown only now that submitting it runs the code above (before, the browser would send
// its fields to the server as a URL query).
form.hidden = false;
