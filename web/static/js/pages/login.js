// Log in: derive the login secret from the passphrase, then unlock the vault.
import { api, busy, cryptoSupported, errorText, homeFor, messages, showError } from './common.js';
import { loginSecretFor, unlockAndStore } from './account-keys.js';

const form = document.getElementById('login-form');
const msgs = messages();

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(form, '');
  const login = form.login.value.trim();
  const passphrase = form.passphrase.value;
  if (!login || !passphrase) {
    showError(form, msgs.fill_both);
    return;
  }
  if (!(await cryptoSupported())) {
    showError(form, msgs.unsupported);
    return;
  }
  busy(form, true, 'login-progress');
  try {
    const pre = await api('/auth/prelogin', { login });
    const loginSecret = await loginSecretFor(passphrase, pre.salt, pre.iterations);
    const session = await api('/auth/login', { login, login_secret: loginSecret });
    if (session.vault) await unlockAndStore(session.vault, passphrase, session.account.id);
    window.location.assign(homeFor(session.account.role));
  } catch (err) {
    showError(form, errorText(err));
    busy(form, false, 'login-progress');
  }
});

// Shown only now that submitting it runs the code above (before, the browser would send
// its fields to the server as a URL query).
form.hidden = false;
