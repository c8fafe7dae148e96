// Pure parts of web/static/js/feed/actions.js: the check that the decrypted
// structure of an event, sign-up, slip or poll is the one the node enforces,
// choice labels, and a permission slip's signature (what the node and the
// teacher's browser verify, docs/protocol/e2e-groups.md §5.1).
// Run: node --test tests/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';

import * as e2e from '../../web/static/js/e2e/suite.js';

// actions.js imports the pages' helpers (pages/common.js), which wire the page's
// forms when loaded: an empty page is enough for the pure functions tested here
globalThis.document = {
  querySelectorAll: () => [], querySelector: () => null, getElementById: () => null,
  addEventListener: () => {}, documentElement: { lang: 'en' },
};
const { SLIP_CONTEXT, choiceLabel, signSlip, structureMatches } = await import('../../web/static/js/feed/actions.js');

// as the node serves it (GET /feed: the post's "action")
const NODE = {
  type: 'signup', deadline: '2026-12-10T17:00:00Z', starts_at: null, ends_at: null, all_day: false,
  multiple: false, open: true,
  choices: [{ id: 'a', capacity: 1, taken: 0 }, { id: 'b', capacity: null, taken: 0 }],
};
// as the teacher's browser wrote it inside the encrypted body
const SIGNED = {
  type: 'signup', deadline: '2026-12-10T17:00:00.000Z',
  choices: [{ id: 'a', capacity: 1 }, { id: 'b', capacity: null }],
};

test('the same structure matches, whatever the ISO spelling of its times', () => {
  assert.equal(structureMatches(NODE, SIGNED), true);
  const event = { ...NODE, type: 'event', choices: [], starts_at: '2026-12-12T00:00:00Z', ends_at: null, all_day: true };
  assert.equal(structureMatches(event, { type: 'event', deadline: '2026-12-10T17:00:00Z', starts_at: '2026-12-12', ends_at: null, all_day: true }), true);
});

test('a structure the node changed is flagged', () => {
  for (const changed of [
    { ...SIGNED, type: 'poll' },
    { ...SIGNED, deadline: '2026-12-11T17:00:00Z' },
    { ...SIGNED, deadline: null },
    { ...SIGNED, choices: [{ id: 'a', capacity: 2 }, { id: 'b', capacity: null }] },
    { ...SIGNED, choices: [{ id: 'a', capacity: 1 }] },
    { ...SIGNED, multiple: true },
    undefined,
  ]) {
    assert.equal(structureMatches(NODE, changed), false, JSON.stringify(changed));
  }
});

test('fixed answers are translated, others come from the encrypted labels', () => {
  const msgs = { answer_yes: 'Oui' };
  assert.equal(choiceLabel('yes', {}, msgs), 'Oui');
  assert.equal(choiceLabel('a', { a: 'Gâteau' }, msgs), 'Gâteau');
  assert.equal(choiceLabel('c', { a: 'Gâteau' }, msgs), 'c');
});

test('a slip answer is signed with the identity key over the class node ids', async () => {
  const raw = await e2e.generateAccountKeys();
  const keys = await e2e.importAccountKeys(raw);
  const cls = { state: { group: 'AAAAAAAAAAAAAAAAAAAAAA' } };
  const item = { id: 'BBBBBBBBBBBBBBBBBBBBBB', version: 2 };
  const { signature, at } = await signSlip(keys, cls, item, 7, 'agree');
  const statement = { type: 'slip-answer', group: cls.state.group, post: item.id, post_version: 2, child: 7, decision: 'agree', at };
  assert.equal(await e2e.verifyObject(raw.signPk, SLIP_CONTEXT, statement, signature), true);
  assert.equal(await e2e.verifyObject(raw.signPk, SLIP_CONTEXT, { ...statement, decision: 'decline' }, signature), false);
  assert.equal(await e2e.verifyObject(raw.signPk, SLIP_CONTEXT, { ...statement, child: 8 }, signature), false);
});

test('the CSV export quotes what needs it and never starts a formula', async () => {
  const { csvCell } = await import('../../web/static/js/feed/action-files.js');
  assert.equal(csvCell('Léa Martin'), 'Léa Martin');
  assert.equal(csvCell('Gâteau, jus'), '"Gâteau, jus"');
  assert.equal(csvCell('dit "oui"'), '"dit ""oui"""');
  assert.equal(csvCell('=HYPERLINK("x")'), '"\'=HYPERLINK(""x"")"');
  assert.equal(csvCell(null), '');
});

test('.ics lines fold at 75 octets without splitting a character', async () => {
  const { icsFold } = await import('../../web/static/js/feed/action-files.js');
  const line = `SUMMARY:${'é'.repeat(100)}`;
  const parts = icsFold(line).split('\r\n');
  assert.ok(parts.length > 1);
  for (const part of parts) assert.ok(new TextEncoder().encode(part).length <= 75, part);
  assert.ok(parts.slice(1).every((p) => p.startsWith(' ')));
  assert.equal(parts.map((p, i) => (i ? p.slice(1) : p)).join(''), line);
});
