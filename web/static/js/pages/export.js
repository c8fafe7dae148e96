// "Download all my data": fetch the export, decrypt it here with this
// browser's keys (web/static/js/export/collect.js), and offer a zip holding
// data.json (decrypted, structured), README.txt (in the page's language) and
// the attached files under files/. Nothing decrypted leaves this device.

import { loadAccountKeys } from '../e2e/keystore.js';
import { Collector } from '../export/collect.js';
import { ZipWriter } from '../export/zip.js';
import { fill } from '../feed/render.js';
import { api, errorText, keyStoreName, UserError } from './common.js';

const root = document.getElementById('export');
const msgs = JSON.parse(document.getElementById('export-messages').textContent);
const startButton = document.getElementById('export-start');
const progress = document.getElementById('export-progress');
const bar = document.getElementById('export-bar');
const status = document.getElementById('export-status');
const errorBox = document.getElementById('export-error');
const doneBox = document.getElementById('export-done');
const link = document.getElementById('export-link');
const STEPS = ['fetch', 'keys', 'posts', 'messages', 'absences', 'alerts', 'zip'];

function step(name, count = null) {
  const index = STEPS.indexOf(name);
  if (index >= 0) bar.value = index;
  status.textContent = fill(msgs.steps[name], { count: count ?? '' });
}

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function readme(data, when) {
  const [title, made, ...lines] = msgs.readme;
  const head = fill(made, { date: when.toLocaleString(document.documentElement.lang || undefined), node: location.origin, name: data.profile.display_name });
  return `${title}\n${'='.repeat(title.length)}\n\n${head}\n\n${lines.map((l) => `- ${l}`).join('\n')}\n`;
}

async function build() {
  const keys = await loadAccountKeys(keyStoreName(root.dataset.accountId)).catch(() => null);
  if (!keys) throw new UserError(msgs.no_keys);
  const when = new Date();
  const zip = new ZipWriter();
  const collector = new Collector({
    keys, accountId: root.dataset.accountId, msgs,
    onProgress: (name, count) => step(name, count),
    addFile: (path, bytes) => zip.add(path, bytes, { date: when }),
  });
  step('fetch');
  const summary = await api('/me/export');
  step('keys');
  await collector.openClasses(summary.classes);
  step('posts', 0);
  const posts = await collector.posts();
  step('messages');
  const conversations = await collector.conversations(summary.conversations);
  step('absences');
  const absences = await collector.absences(summary.absences);
  step('alerts');
  const alerts = await collector.alerts(summary.alerts);
  step('zip');
  const data = {
    export: { format: summary.format, made_at: summary.generated_at, node: location.origin },
    profile: summary.profile,
    children: summary.children,
    classes: summary.classes,
    posts,
    conversations,
    absence_notes: absences,
    alerts,
    sessions: summary.sessions,
    devices: summary.devices,
    notification_settings: summary.notification_settings,
    notifications: summary.notifications,
    not_decrypted: collector.notDecrypted,
  };
  zip.add('data.json', `${JSON.stringify(data, null, 2)}\n`, { date: when });
  zip.add('README.txt', readme(data, when), { date: when });
  return { blob: zip.blob(), missing: collector.notDecrypted.length };
}

async function run() {
  startButton.disabled = true;
  errorBox.hidden = true;
  doneBox.hidden = true;
  progress.hidden = false;
  root.setAttribute('aria-busy', 'true');
  try {
    const { blob, missing } = await build();
    const name = `carnet-export-${today()}.zip`;
    if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = name;
    doneBox.hidden = false;
    bar.value = bar.max;
    const done = { 0: msgs.done, 1: msgs.done_missing_one }[missing] || msgs.done_missing;
    status.textContent = fill(done, { name, count: missing });
    link.click(); // the download starts; the link stays to save it again
  } catch (err) {
    progress.hidden = true;
    errorBox.textContent = err instanceof RangeError ? msgs.too_big : errorText(err);
    errorBox.hidden = false;
  } finally {
    startButton.disabled = false;
    root.setAttribute('aria-busy', 'false');
  }
}

startButton.addEventListener('click', () => run());
