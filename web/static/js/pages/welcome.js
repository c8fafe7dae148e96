// First login of a guardian: phone + access code → SMS code → passphrase.
import { api, busy, cryptoSupported, errorText, messages, showError } from './common.js';
import { createAccountSecrets, loginSecretFor, readNewPassphrase, showRecovery, unlockAndStore, storeKeys } from './account-keys.js';

const msgs = messages();
const steps = {
  code: document.getElementById('step-code'),
  sms: document.getElementById('step-sms'),
  passphrase: document.getElementById('step-passphrase'),
};
let attemptId = null;
let verified = null;
let resetting = false;

function show(step) {
  for (const [name, form] of Object.entries(steps)) form.hidden = name !== step;
  for (const li of document.querySelectorAll('.steps li')) {
    if (li.dataset.step === step) li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
  }
  const first = steps[step].querySelector('input:not([type=hidden]):not([hidden])');
  if (first) first.focus();
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? '');
}

steps.code.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = steps.code;
  showError(form, '');
  busy(form, true);
  try {
    const started = await api('/onboarding/start', { phone: form.phone.value, code: form.code.value });
    attemptId = started.attempt_id;
    document.getElementById('sms-sent').textContent = fill(msgs.sms_sent, { phone: started.phone_masked });
    show('sms');
  } catch (err) {
    showError(form, errorText(err));
  } finally {
    busy(form, false);
  }
});

steps.sms.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = steps.sms;
  showError(form, '');
  busy(form, true);
  try {
    verified = await api('/onboarding/verify', { attempt_id: attemptId, sms_code: form.sms_code.value });
    document.getElementById('verified-for').textContent = fill(msgs.verified, { child: verified.child_first_name, class: verified.class_name });
    const existing = Boolean(verified.existing_kdf_salt);
    document.getElementById('new-account').hidden = existing;
    document.getElementById('existing-account').hidden = !existing;
    show('passphrase');
  } catch (err) {
    showError(form, errorText(err));
  } finally {
    busy(form, false);
  }
});

document.getElementById('forgot-passphrase').addEventListener('click', () => {
  resetting = true;
  document.getElementById('existing-account').hidden = true;
  document.getElementById('new-account').hidden = false;
  document.getElementById('reset-explained').hidden = false;
  document.getElementById('new-passphrase').focus();
});

document.getElementById('resend').addEventListener('click', async () => {
  const form = steps.sms;
  showError(form, '');
  try {
    const again = await api('/onboarding/resend', { attempt_id: attemptId });
    document.getElementById('sms-sent').textContent = fill(msgs.sms_sent, { phone: again.phone_masked });
  } catch (err) {
    showError(form, errorText(err));
  }
});

steps.passphrase.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = steps.passphrase;
  showError(form, '');
  if (!(await cryptoSupported())) {
    showError(form, msgs.unsupported);
    return;
  }
  if (verified.existing_kdf_salt && !resetting) {
    const passphrase = form.querySelector('#existing-passphrase').value;
    busy(form, true, 'passphrase-progress');
    try {
      const secret = await loginSecretFor(passphrase, verified.existing_kdf_salt, verified.existing_kdf_iterations);
      const session = await api('/onboarding/complete-existing', { attempt_id: attemptId, login_secret: secret });
      await unlockAndStore(session.vault, passphrase, session.account.id);
      window.location.assign('/home');
    } catch (err) {
      showError(form, errorText(err));
      busy(form, false, 'passphrase-progress');
    }
    return;
  }
  let passphrase;
  try {
    passphrase = readNewPassphrase(form.querySelector('#new-passphrase').value, form.querySelector('#new-passphrase2').value, msgs);
  } catch (err) {
    showError(form, errorText(err));
    return;
  }
  busy(form, true, 'passphrase-progress');
  try {
    const { credentials, recoveryKey, keys } = await createAccountSecrets(verified.login, passphrase, verified.kdf_iterations);
    const path = resetting ? '/onboarding/reset' : '/onboarding/complete';
    const session = await api(path, { attempt_id: attemptId, credentials });
    await storeKeys(session.account.id, keys);
    form.hidden = true;
    document.querySelector('.steps').hidden = true;
    showRecovery(recoveryKey, '/home');
  } catch (err) {
    showError(form, errorText(err));
    busy(form, false, 'passphrase-progress');
  }
});

// Shown only now that submitting it runs the code above (before, the browser would send
// the phone number and access code to the server as a URL query).
steps.code.hidden = false;
