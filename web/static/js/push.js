// Web Push on this device: register the service worker, subscribe with the
// node's VAPID key, and tell the node (or stop). The node stores the
// subscription; the push service only ever carries encrypted payloads.
import { api } from './pages/common.js';

export function pushSupported() {
  return window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

/** iPhone and iPad offer Web Push only to sites added to the Home Screen (iOS 16.4+). */
export function needsHomeScreen() {
  const ios = /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
  const standalone = window.matchMedia('(display-mode: standalone)').matches || navigator.standalone === true;
  return ios && !standalone;
}

function keyBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameBytes(buffer, bytes) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((x, i) => x === bytes[i]);
}

export async function currentSubscription() {
  if (!pushSupported()) return null;
  const registration = await navigator.serviceWorker.getRegistration('/');
  return registration ? registration.pushManager.getSubscription() : null;
}

export class NotAllowed extends Error {}

/** Ask for permission, subscribe this browser and register it with the node. Call from a click. */
export async function turnOn(publicKey) {
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new NotAllowed(permission);
  await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  const registration = await navigator.serviceWorker.ready;
  const key = keyBytes(publicKey);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameBytes(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe(); // made for another node key: useless now
    subscription = null;
  }
  if (!subscription) {
    subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  }
  const json = subscription.toJSON();
  try {
    await api('/push/subscriptions', { endpoint: json.endpoint, p256dh: json.keys.p256dh, auth: json.keys.auth });
  } catch (err) {
    await subscription.unsubscribe().catch(() => {});
    throw err;
  }
  return subscription;
}

/** Forget this browser on the node and at the push service; false if it was not subscribed. */
export async function turnOff() {
  const subscription = await currentSubscription();
  if (!subscription) return false;
  try {
    await api('/push/subscriptions', { endpoint: subscription.endpoint }, { method: 'DELETE' });
  } finally {
    await subscription.unsubscribe();
  }
  return true;
}

/** At log-out: stop this browser's notifications, but never hold the log-out up for long. */
export async function turnOffQuietly(ms = 2000) {
  try {
    await Promise.race([turnOff(), new Promise((resolve) => { setTimeout(resolve, ms); })]);
  } catch {
    // the session may already be gone; the node drops the subscription at the next 404/410
  }
}
