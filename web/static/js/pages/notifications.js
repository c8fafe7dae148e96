// My account → Notifications: turn Web Push on or off for this device.
// Quiet hours and the device list are plain forms handled by the server.
import { busy, errorText, showError } from './common.js';
import { NotAllowed, currentSubscription, needsHomeScreen, pushSupported, turnOff, turnOn } from '../push.js';

const section = document.getElementById('notifications');
if (section) {
  const controls = section.querySelector('#push-controls');
  const state = controls.querySelector('#push-state');
  const on = controls.querySelector('#push-on');
  const off = controls.querySelector('#push-off');
  const msgs = JSON.parse(document.getElementById('push-messages').textContent);

  const refresh = async () => {
    on.hidden = true;
    off.hidden = true;
    if (!pushSupported()) {
      state.textContent = needsHomeScreen() ? msgs.ios : msgs.unsupported;
      return;
    }
    if (Notification.permission === 'denied') {
      state.textContent = msgs.denied;
      return;
    }
    const subscription = await currentSubscription().catch(() => null);
    state.textContent = subscription ? msgs.on : msgs.off;
    on.hidden = Boolean(subscription);
    off.hidden = !subscription;
  };

  const act = (button, action) => {
    button.addEventListener('click', async () => {
      showError(controls, '');
      busy(controls, true);
      try {
        await action();
        location.hash = 'notifications';
        location.reload(); // the device list comes from the server
      } catch (err) {
        showError(controls, err instanceof NotAllowed || err?.name === 'NotAllowedError' ? msgs.not_allowed : errorText(err));
        busy(controls, false);
        await refresh();
      }
    });
  };
  act(on, () => turnOn(section.dataset.vapidKey));
  act(off, () => turnOff());
  refresh();
}
