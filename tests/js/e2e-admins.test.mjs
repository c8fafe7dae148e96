// The `admins` log operation of web/static/js/e2e/groups.js (docs/protocol/e2e-groups.md
// §2, §7): a school changes who may sign alerts. Checked against the
// `admins_change` part of tests/vectors/e2e-alerts.json (made by the Python
// reference, scripts/gen-e2e-alert-vectors): entries reproduced byte for byte,
// the same state, every negative case refused for the same reason. Then JS
// round trips (changeAdmins) and tampering.
// Run: node --test tests/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as e2e from '../../web/static/js/e2e/suite.js';
import * as g from '../../web/static/js/e2e/groups.js';

const V = JSON.parse(readFileSync(new URL('../vectors/e2e-alerts.json', import.meta.url), 'utf8'));
const C = V.admins_change;
const b64d = (s) => e2e.b64urlDecode(s);
const clone = (o) => JSON.parse(JSON.stringify(o));
const G = V.group;
const KEYS = new Map(C.epoch_keys.map((k, i) => [i, b64d(k)]));
const T0 = 1789000000;
const BODY = { template: 'lockdown', text: 'Confinement.', drill: false };
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const refusedWith = (pattern, code = 'message') => (err) => {
  assert.equal(err.code, code, `code ${err.code}: ${err.message}`);
  assert.match(err.message, pattern);
  return true;
};

async function vectorPerson(name) {
  const p = name === 'staff' ? C.staff : V.people[name];
  const raw = { signSk: b64d(p.sign_sk), signPk: b64d(p.sign_pk), encSk: b64d(p.enc_sk), encPk: b64d(p.enc_pk) };
  return { raw, keys: await e2e.importAccountKeys(raw) };
}

async function freshPerson() {
  const raw = await e2e.generateAccountKeys();
  return { raw, keys: await e2e.importAccountKeys(raw) };
}

// ------------------------------------------------------------------ vectors

test('vectors: the admins entry and the rotate are reproduced; state, pending and epoch admins match', async () => {
  assert.deepEqual(C.log.slice(0, 5), V.log);
  for (let i = 0; i < C.log.length; i++) assert.equal(await g.entryHash(C.log[i]), C.hashes[i]);
  const [admin, deputy, staff] = [await vectorPerson('admin'), await vectorPerson('deputy'), await vectorPerson('staff')];
  const e6 = await g.makeEntry(deputy.keys.sign, deputy.raw.signPk, G, 6, C.hashes[5], 'admins', g.adminsBody([admin.raw.signPk, staff.raw.signPk]), T0 + 6);
  assert.deepEqual(e6, C.log[6]);
  const to = C.state.active;
  const rotate = await g.rotateBody(G, 1, KEYS.get(1), to, null);
  assert.deepEqual(await g.makeEntry(admin.keys.sign, admin.raw.signPk, G, 8, C.hashes[7], 'rotate', rotate, T0 + 8), C.log[8]);
  const state = await g.verifyLog(clone(C.log));
  assert.deepEqual(state.admins, C.state.admins);
  assert.deepEqual(state.admins, C.new_admins);
  assert.deepEqual(state.rootAdmins, C.state.root_admins);
  assert.deepEqual(state.epochs.map((e) => e.admins), C.state.epoch_admins);
  assert.deepEqual(Object.fromEntries([...state.members.values()].map((m) => [m.member, m.role])), C.state.roles);
  assert.deepEqual(state.activeMembers(), C.state.active);
  const pending = [];
  for (let n = 1; n <= C.log.length; n++) pending.push((await g.verifyLog(clone(C.log.slice(0, n)))).pendingAdmins);
  assert.deepEqual(pending, C.pending_admins);
  const anna = await vectorPerson('anna');
  const env = C.envelopes.anna_epoch_1;
  assert.deepEqual(await g.openEpochKey(G, env, V.members.anna, anna.keys.enc, anna.raw.encPk, state.epochs[1].commit), KEYS.get(1));
  assert.deepEqual(await g.sealEpochKey(G, 1, KEYS.get(1), V.members.anna, anna.raw.encPk, { _ikmEForTests: b64d(C.envelope_ikm_e.anna_epoch_1) }), env);
});

test('vectors: valid alerts open, negative alerts and logs are refused for the same reason as in Python', async () => {
  const state = await g.verifyLog(clone(C.log));
  for (const [name, c] of Object.entries(V.admins_change.alerts)) {
    assert.equal((await g.decryptAlert({ message: clone(c.wire) }, state, KEYS)).template, 'lockdown', name);
  }
  assert.ok(C.negative.alerts.length >= 3 && C.negative.logs.length >= 10);
  for (const c of C.negative.alerts) {
    await assert.rejects(g.decryptAlert({ message: clone(c.wire) }, state, KEYS), refusedWith(new RegExp(escape(c.error))), c.why);
  }
  for (const c of C.negative.logs) {
    await assert.rejects(g.verifyLog(clone(c.log)), refusedWith(new RegExp(escape(c.error)), 'group_log'), c.why);
  }
});

// --------------------------------------------------------------- round trips

/** A JS school group: the admin and a guardian, epoch 0 (a cut). */
async function buildSchool() {
  const [admin, anna] = [await freshPerson(), await freshPerson()];
  const group = g.newGroupId();
  const log = [];
  const keys = new Map([[0, g.newEpochKey()]]);
  const append = async (op, body, signer = admin) => {
    const prev = log.length ? await g.entryHash(log[log.length - 1]) : null;
    log.push(await g.makeEntry(signer.keys.sign, signer.raw.signPk, group, log.length, prev, op, body, 1800000000 + log.length));
  };
  await append('create', g.createBody([admin.raw.signPk], 'from_join'));
  await append('add', g.addBody('d1@school.test', 'admin', admin.raw.signPk, admin.raw.encPk));
  await append('add', g.addBody('a2@school.test', 'guardian', anna.raw.signPk, anna.raw.encPk));
  await append('rotate', await g.rotateBody(group, 0, keys.get(0), ['a2@school.test', 'd1@school.test'], null));
  const s = { admin, anna, group, log, keys, append };
  s.state = () => g.verifyLog(clone(log));
  s.change = async (admins, signer = admin) => {
    const out = await g.changeAdmins({ sign: signer.keys.sign, signPk: signer.raw.signPk }, await s.state(), admins.map((p) => p.raw.signPk));
    log.push(...out.entries);
    keys.set(keys.size, out.epochKey);
    return out;
  };
  s.alert = async (p, me) => g.encryptAlert({ sign: p.keys.sign, signPk: p.raw.signPk }, me, await s.state(), keys, BODY);
  s.forge = async (p, me, epoch) => {
    const id = g.newMessageId();
    const message = await g.encryptMessage({
      signKey: p.keys.sign, signPk: p.raw.signPk, author: me, group, kind: 'alert', body: BODY,
      messageKey: await g.messageKeyFromEpoch(keys.get(epoch), group, epoch, id), epoch, messageId: id,
    });
    return { message };
  };
  return s;
}

test('round trip: an admin appointed later signs alerts in the new epoch; a dropped one only in the old', async () => {
  const s = await buildSchool();
  const [deputy, staff] = [await freshPerson(), await freshPerson()];
  const out = await s.change([s.admin, deputy]);
  assert.deepEqual(out.entries.map((e) => e.op), ['admins', 'rotate']);
  assert.equal(out.entries[1].body.cut, true);
  assert.deepEqual(out.envelopes.map((e) => e.member), ['a2@school.test', 'd1@school.test']);
  const annaEnv = out.envelopes.find((e) => e.member === 'a2@school.test');
  let state = await s.state();
  assert.deepEqual(await g.openEpochKey(s.group, annaEnv, 'a2@school.test', s.anna.keys.enc, s.anna.raw.encPk, state.epochs[1].commit), out.epochKey);
  await s.append('add', g.addBody('d4@school.test', 'admin', deputy.raw.signPk, deputy.raw.encPk));
  const old = await s.alert(deputy, 'd4@school.test');
  assert.equal(old.message.header.epoch, 1);
  await s.change([s.admin, staff]);
  await s.append('add', g.addBody('s5@school.test', 'admin', staff.raw.signPk, staff.raw.encPk));
  state = await s.state();
  assert.deepEqual(state.epochs.map((e) => e.admins.length), [1, 2, 2]);
  assert.equal(state.members.get('d4@school.test').active, true);
  assert.deepEqual((await g.decryptAlert(old, state, s.keys)), BODY);
  assert.deepEqual(await g.decryptAlert(await s.alert(staff, 's5@school.test'), state, s.keys), BODY);
  const late = await s.forge(deputy, 'd4@school.test', 2);
  await assert.rejects(g.decryptAlert(late, state, s.keys), refusedWith(/emergency-role keys of its epoch/));
  await assert.rejects(s.alert(deputy, 'd4@school.test'), refusedWith(/emergency-role keys of its epoch/));
  const km = await g.messageKeyFromEpoch(s.keys.get(2), s.group, 2, late.message.header.id);
  await assert.rejects(g.decryptMessage(late.message, km, { state }), refusedWith(/emergency-role keys of its epoch/));
  // The staff member's alert in the epoch before their appointment.
  await assert.rejects(g.decryptAlert(await s.forge(staff, 's5@school.test', 1), state, s.keys), refusedWith(/emergency-role keys of its epoch/));
});

test('pending: after an admins entry, nothing is encrypted until the rotate', async () => {
  const s = await buildSchool();
  const staff = await freshPerson();
  await s.append('admins', g.adminsBody([s.admin.raw.signPk, staff.raw.signPk]));
  const state = await s.state();
  assert.equal(state.pendingAdmins, true);
  assert.equal(state.pending, true);
  assert.deepEqual(state.pendingRemovals, []);
  await assert.rejects(s.alert(s.admin, 'd1@school.test'), refusedWith(/admin change is waiting/, 'epoch_key'));
  // changeAdmins settles it (a second admins entry, then the rotate).
  const out = await s.change([s.admin]);
  const after = await s.state();
  assert.equal(after.pendingAdmins, false);
  assert.equal(after.pending, false);
  assert.deepEqual(after.epochs[1].admins, [e2e.b64urlEncode(s.admin.raw.signPk)]);
  assert.equal((await g.decryptAlert(await s.alert(s.admin, 'd1@school.test'), after, s.keys)).template, 'lockdown');
  assert.equal(out.entries[0].seq, 5);
});

test('pins: the create admins, or those at the known head with that head', async () => {
  const s = await buildSchool();
  const staff = await freshPerson();
  const before = await s.state();
  await s.change([s.admin, staff]);
  const state = await s.state();
  await g.verifyLog(clone(s.log), { pinnedAdmins: before.admins, knownHead: [before.headSeq, before.headHash] });
  await g.verifyLog(clone(s.log), { pinnedAdmins: state.admins, knownHead: { seq: state.headSeq, hash: state.headHash } });
  await assert.rejects(g.verifyLog(clone(s.log), { pinnedAdmins: state.admins }), refusedWith(/teacher keys changed/, 'group_log'));
  await assert.rejects(
    g.verifyLog(clone(s.log), { pinnedAdmins: state.admins, knownHead: [before.headSeq, before.headHash] }),
    refusedWith(/teacher keys changed/, 'group_log'),
  );
});

// ----------------------------------------------------------------- tampering

test('tamper: admins entries by a non-admin, with bad bodies, or rewritten are refused', async () => {
  const s = await buildSchool();
  const outsider = await freshPerson();
  const refused = async (body, pattern, signer = s.admin) => {
    const prev = await g.entryHash(s.log[s.log.length - 1]);
    const e = await g.makeEntry(signer.keys.sign, signer.raw.signPk, s.group, s.log.length, prev, 'admins', body, 0);
    await assert.rejects(g.verifyLog([...clone(s.log), e]), refusedWith(pattern, 'group_log'), JSON.stringify(body));
  };
  const ok = g.adminsBody([s.admin.raw.signPk]);
  await refused(ok, /not an admin of this group/, s.anna);
  await refused(ok, /not an admin of this group/, outsider);
  await refused({ admins: [] }, /admins: 1-16 admins/);
  const many = [];
  for (let i = 0; i < 17; i++) many.push((await freshPerson()).raw.signPk);
  await refused(g.adminsBody(many), /admins: 1-16 admins/);
  await refused(g.adminsBody([s.admin.raw.signPk, s.admin.raw.signPk]), /admins: a key is listed twice/);
  await refused({ ...ok, history: 'from_join' }, /admins: unexpected members/);
  await refused({ admins: 'x' }, /admins: 1-16 admins/);
  await assert.rejects(s.change([s.anna], s.anna), refusedWith(/not an admin of this group/, 'group_log'));
  const out = await g.changeAdmins({ sign: s.admin.keys.sign, signPk: s.admin.raw.signPk }, await s.state(), [s.admin.raw.signPk, outsider.raw.signPk]);
  const rewritten = clone(out.entries[0]);
  rewritten.body.admins = [e2e.b64urlEncode(outsider.raw.signPk)];
  await assert.rejects(g.verifyLog([...clone(s.log), rewritten]), refusedWith(/bad signature/, 'group_log'));
  assert.deepEqual([...g.OPS], ['create', 'add', 'remove', 'rotate', 'admins']);
});
