// web/static/js/feed/chatcheck.js: before sealing a conversation message, the page replays
// the signed membership chain (docs/protocol/e2e-groups.md §9) and refuses a list of people
// the chain did not let in: a node cannot add a reader to a room or a group by itself.
// Run: node --test tests/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';

import * as e2e from '../../web/static/js/e2e/suite.js';
import * as g from '../../web/static/js/e2e/groups.js';

// chatcheck.js imports the pages' helpers (pages/common.js), which look at the page when
// loaded: an empty page is enough for the pure checks tested here
globalThis.document = {
  querySelectorAll: () => [], querySelector: () => null, getElementById: () => null,
  addEventListener: () => {}, documentElement: { lang: 'en' },
};
const { recipients, verifyChain } = await import('../../web/static/js/feed/chatcheck.js');

const MSGS = { chain_refused: 'chain refused', members_mismatch: 'members mismatch' };

async function person(member) {
  const raw = await e2e.generateAccountKeys();
  return { member, raw, keys: await e2e.importAccountKeys(raw) };
}

/** A class whose teacher approved everyone: its verified state is what the page holds. */
async function classOf(teacher, guardians) {
  const group = g.newGroupId();
  const log = [];
  const append = async (op, body) => {
    const prev = log.length ? await g.entryHash(log[log.length - 1]) : null;
    log.push(await g.makeEntry(teacher.keys.sign, teacher.raw.signPk, group, log.length, prev, op, body, 1800000000));
  };
  await append('create', g.createBody([teacher.raw.signPk]));
  await append('add', g.addBody(teacher.member, 'teacher', teacher.raw.signPk, teacher.raw.encPk));
  for (const p of guardians) await append('add', g.addBody(p.member, 'guardian', p.raw.signPk, p.raw.encPk));
  const everyone = [teacher, ...guardians].map((p) => p.member).sort();
  await append('rotate', await g.rotateBody(group, 0, g.newEpochKey(), everyone, null));
  return { state: await g.verifyLog(log) };
}

async function message(cls, author, kind, to, parent = null, body = {}) {
  return g.encryptMessage({
    signKey: author.keys.sign, signPk: author.raw.signPk, author: author.member, group: cls.state.group,
    kind, body, messageKey: crypto.getRandomValues(new Uint8Array(32)), to: [...to].sort(), parent, at: 1800000000,
  });
}

const people = await Promise.all(['1@a.test', '2@a.test', '3@a.test', '4@a.test', '5@b.test'].map(person));
const [teacher, anna, ben, chloe, dan] = people;
const cls = await classOf(teacher, [anna, ben, chloe, dan]);

async function groupOf(kind = 'group') {
  const opening = await message(cls, anna, 'conversation', [anna.member, ben.member], null, { title: 'Covoiturage' });
  return { summary: { id: opening.header.id, kind }, chain: [opening] };
}

test('a chain of add, join and leave replays to its members', async () => {
  const { summary, chain } = await groupOf();
  chain.push(await message(cls, ben, 'member', [anna.member, ben.member, dan.member], summary.id, { op: 'add', member: dan.member }));
  chain.push(await message(cls, anna, 'member', [anna.member, ben.member, dan.member], summary.id, { op: 'leave', member: anna.member }));
  const members = await verifyChain(cls, summary, chain, MSGS);
  assert.deepEqual([...members].sort(), [ben.member, dan.member]);
  const page = { conversation: summary, chain, reply_to: [ben.member, dan.member] };
  assert.deepEqual(await recipients(cls, page, MSGS), [ben.member, dan.member]);

  const room = await groupOf('room');
  room.chain.push(await message(cls, chloe, 'member', [anna.member, ben.member, chloe.member], room.summary.id, { op: 'join', member: chloe.member }));
  assert.deepEqual([...(await verifyChain(cls, room.summary, room.chain, MSGS))].sort(), [anna.member, ben.member, chloe.member]);
});

test('a reader the node slipped into the list is refused', async () => {
  const { summary, chain } = await groupOf();
  const page = { conversation: summary, chain, reply_to: [anna.member, ben.member, chloe.member] };
  await assert.rejects(recipients(cls, page, MSGS), /members mismatch/);
  // someone outside the class's signed log is refused even when the list is otherwise right
  const outsider = { conversation: summary, chain, reply_to: [anna.member, 'x@evil.test'] };
  await assert.rejects(recipients(cls, outsider, MSGS), /members mismatch/);
});

test('a join into a private group, an add by a non-member and a forged event are refused', async () => {
  const { summary, chain } = await groupOf();
  const selfJoin = [...chain, await message(cls, chloe, 'member', [anna.member, ben.member, chloe.member], summary.id)];
  await assert.rejects(verifyChain(cls, summary, selfJoin, MSGS), /chain refused/);
  const byOutsider = [...chain, await message(cls, chloe, 'member', [anna.member, ben.member, dan.member], summary.id)];
  await assert.rejects(verifyChain(cls, summary, byOutsider, MSGS), /chain refused/);
  const two = [...chain, await message(cls, ben, 'member', [anna.member, ben.member, chloe.member, dan.member], summary.id)];
  await assert.rejects(verifyChain(cls, summary, two, MSGS), /chain refused/);
  // the node rewrites an event's recipients: its signature no longer verifies
  const event = await message(cls, ben, 'member', [anna.member, ben.member, dan.member], summary.id);
  const forged = structuredClone(event);
  forged.header.to = [anna.member, ben.member, chloe.member];
  await assert.rejects(verifyChain(cls, summary, [...chain, forged], MSGS), /chain refused/);
  // an event of another conversation is refused
  const other = await groupOf();
  const elsewhere = await message(cls, ben, 'member', [anna.member, ben.member, dan.member], other.summary.id);
  await assert.rejects(verifyChain(cls, summary, [...chain, elsewhere], MSGS), /chain refused/);
});
