// Creating an account's secrets in this browser (first login, staff setup)
// and unlocking them at login.  The node receives public keys, the encrypted
// vault and a login secret; the passphrase and the private keys never leave.

import {
  accountKeysProof,
  b64urlDecode,
  b64urlEncode,
  checkPassphrase,
  createVault,
  deriveFromPassphrase,
  generateAccountKeys,
  importAccountKeys,
  openVaultWithPassphrase,
} from '../e2e/suite.js';
import { saveAccountKeys, wipeAll } from '../e2e/keystore.js';
import { keyStoreName, UserError } from './common.js';

/** Check both passphrase fields; returns the passphrase or throws an Error with a translated message. */
export function readNewPassphrase(first, second, msgs) {
  if (first !== second) throw new UserError(msgs.mismatch);
  try {
    checkPassphrase(first);
  } catch (err) {
    throw new UserError(msgs[`passphrase_${err.code}`] || msgs.failed);
  }
  return first;
}

/**
 * New keys (or `existingRaw` ones) and a vault for `login`.  Returns {credentials, recoveryKey, keys};
 * `keys` are non-extractable CryptoKeys to store once the node accepted them.
 */
export async function createAccountSecrets(login, passphrase, iterations, existingRaw = null) {
  // existingRaw: keys opened from the current vault with the recovery key (kept, not replaced)
  const raw = existingRaw || (await generateAccountKeys());
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const { vault, recoveryKey, loginSecret } = await createVault(raw, { passphrase, salt, iterations });
  const keys = await importAccountKeys(raw, { extractable: false });
  raw.signSk.fill(0);
  raw.encSk.fill(0);
  const proof = await accountKeysProof(keys.sign, keys.signPk, keys.encPk, login);
  const credentials = {
    kdf_salt: b64urlEncode(salt),
    kdf_iterations: iterations,
    login_secret: b64urlEncode(loginSecret),
    sign_pk: b64urlEncode(keys.signPk),
    enc_pk: b64urlEncode(keys.encPk),
    vault,
    proof,
  };
  return { credentials, recoveryKey, keys };
}

/** The login secret for an existing account, from the salt the node returned. */
export async function loginSecretFor(passphrase, saltB64, iterations) {
  const { loginSecret } = await deriveFromPassphrase(passphrase, b64urlDecode(saltB64, { length: 16 }), iterations);
  return b64urlEncode(loginSecret);
}

/** Open the vault the node returned after login and keep the keys in this browser. */
export async function unlockAndStore(vault, passphrase, accountId) {
  const raw = await openVaultWithPassphrase(vault, passphrase);
  const keys = await importAccountKeys(raw, { extractable: false });
  raw.signSk.fill(0);
  raw.encSk.fill(0);
  await storeKeys(accountId, keys);
  return keys;
}

/** Keep only this person's keys: whoever used this browser before leaves none behind. */
export async function storeKeys(accountId, keys) {
  await wipeAll();
  await saveAccountKeys(keyStoreName(accountId), keys);
}

/** Show the recovery key and enable "Continue" once the person confirms they saved it. */
export function showRecovery(recoveryKey, nextUrl) {
  const section = document.getElementById('recovery');
  document.getElementById('recovery-key').textContent = recoveryKey;
  const next = document.getElementById('recovery-continue');
  next.href = nextUrl;
  const box = document.getElementById('recovery-saved');
  const sync = () => {
    next.setAttribute('aria-disabled', box.checked ? 'false' : 'true');
    next.classList.toggle('disabled', !box.checked);
  };
  box.addEventListener('change', sync);
  next.addEventListener('click', (event) => {
    if (!box.checked) event.preventDefault();
  });
  document.getElementById('print-recovery').addEventListener('click', () => window.print());
  sync();
  section.hidden = false;
  section.querySelector('h2').focus?.();
}
