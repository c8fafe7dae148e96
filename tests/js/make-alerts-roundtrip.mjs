// JS → Python round trip of the school group and its emergency alerts (not a
// test file by itself): with fresh random keys, builds a school's "all
// guardians" log (docs/protocol/e2e-groups.md §7), an envelope, an alert
// thread (first alert, follow-up, all clear) and an alert forged by a
// guardian with web/static/js/e2e/groups.js, and prints them as JSON on
// stdout with the private keys needed to open them.
// tests/node/e2e/test_alerts.py runs it and opens everything with the Python
// reference (node/e2e, node/refclient_groups.py).
// Usage: node tests/js/make-alerts-roundtrip.mjs
import * as e2e from '../../web/static/js/e2e/suite.js';
import * as g from '../../web/static/js/e2e/groups.js';

const b64 = (bytes) => e2e.b64urlEncode(bytes);

async function person() {
  const raw = await e2e.generateAccountKeys();
  return { raw, keys: await e2e.importAccountKeys(raw) };
}

const [admin, anna, ben] = [await person(), await person(), await person()];
const members = { admin: 'd1@school.test', anna: 'a2@school.test', ben: 'b3@school.test' };
const group = g.newGroupId();
const k0 = g.newEpochKey();

const log = [];
async function append(op, body) {
  const prev = log.length ? await g.entryHash(log[log.length - 1]) : null;
  log.push(await g.makeEntry(admin.keys.sign, admin.raw.signPk, group, log.length, prev, op, body, 1800000000 + log.length));
}
await append('create', g.createBody([admin.raw.signPk], 'from_join'));
await append('add', g.addBody(members.admin, 'admin', admin.raw.signPk, admin.raw.encPk));
await append('add', g.addBody(members.anna, 'guardian', anna.raw.signPk, anna.raw.encPk));
await append('add', g.addBody(members.ben, 'guardian', ben.raw.signPk, ben.raw.encPk));
await append('rotate', await g.rotateBody(group, 0, k0, [members.admin, members.anna, members.ben], null));
const state = await g.verifyLog(log);
const envelope = await g.sealEpochKey(group, 0, k0, members.anna, anna.raw.encPk);
const epochKeys = new Map([[0, k0]]);

const bodies = {
  first: { template: 'lockdown', text: 'Confinement en cours 🚨', drill: false },
  follow_up: { template: 'free', text: 'Tout le monde est à l’abri — « attendez » \n"ok" \\ \u2028', drill: false },
  all_clear: { template: 'all_clear', text: '', drill: false },
};
const first = await g.encryptAlert(admin.keys, members.admin, state, epochKeys, bodies.first);
const parent = first.message.header.id;
const followUp = await g.encryptAlert(admin.keys, members.admin, state, epochKeys, { ...bodies.follow_up, parent });
const allClear = await g.encryptAlert(admin.keys, members.admin, state, epochKeys, { ...bodies.all_clear, parent });

// Ben, a guardian, signs an alert with his own (valid) key: everyone must refuse it.
const forgedId = g.newMessageId();
const forged = await g.encryptMessage({
  signKey: ben.keys.sign, signPk: ben.raw.signPk, author: members.ben, group, kind: 'alert', body: bodies.first,
  messageKey: await g.messageKeyFromEpoch(k0, group, 0, forgedId), epoch: 0, messageId: forgedId, at: 1800000500,
});

const keysJson = (p) => ({ sign_sk: b64(p.raw.signSk), sign_pk: b64(p.raw.signPk), enc_sk: b64(p.raw.encSk), enc_pk: b64(p.raw.encPk) });
process.stdout.write(
  JSON.stringify({
    people: { admin: keysJson(admin), anna: keysJson(anna), ben: keysJson(ben) },
    members,
    group,
    epoch_key: b64(k0),
    log,
    head: { seq: state.headSeq, hash: state.headHash },
    envelope,
    alerts: {
      first: { item: first, body: bodies.first },
      follow_up: { item: followUp, body: bodies.follow_up },
      all_clear: { item: allClear, body: bodies.all_clear },
    },
    forged: { message: forged },
  }) + '\n',
);
