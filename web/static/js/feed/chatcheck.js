// Checks before sealing a conversation message (docs/protocol/e2e-groups.md §9): the
// people the node names must be the ones the conversation's signed membership chain
// let in, each an approved member of the class (keys signed by the teacher). Shared
// by the conversation page and the feed's "share in a conversation".

import * as G from '../e2e/groups.js';
import { UserError } from '../pages/common.js';

const sameList = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const sorted = (items) => [...new Set(items)].sort();

/**
 * Replay the signed membership chain of a room or group: the opening message
 * names the first members; each `member` event is sealed to the members after
 * it. A join is its own author coming in (the room only), an add is a member
 * bringing one person, a leave is a member sealing to the same people and
 * going. Anything else is refused. Returns the member set.
 */
export async function verifyChain(cls, summary, chain, msgs) {
  const [opening, ...events] = chain;
  const ok = async (wire, kind, parent) => wire.header.kind === kind && wire.header.parent === parent
    && cls.state.signerIsMember(wire.header.author, wire.header.by) && G.verifyMessageSignature(wire);
  if (opening.header.id !== summary.id || !(await ok(opening, 'conversation', null))) throw new UserError(msgs.chain_refused);
  const members = new Set(opening.header.to);
  if (!members.has(opening.header.author)) throw new UserError(msgs.chain_refused);
  for (const event of events) {
    if (!(await ok(event, 'member', summary.id))) throw new UserError(msgs.chain_refused);
    const { author, to } = event.header;
    const added = to.filter((m) => !members.has(m));
    const dropped = [...members].filter((m) => !to.includes(m));
    if (dropped.length === 0 && added.length === 1 && added[0] === author && summary.kind === 'room') {
      members.add(author); // joined the room alone
    } else if (dropped.length === 0 && added.length === 1 && members.has(author)) {
      members.add(added[0]); // a member added someone
    } else if (dropped.length === 0 && added.length === 0 && members.has(author)) {
      members.delete(author); // a member left
    } else {
      throw new UserError(msgs.chain_refused);
    }
  }
  return members;
}

/** Who a new message of a conversation page is sealed to, checked against the signed records. */
export async function recipients(cls, page, msgs) {
  const active = new Set(cls.state.activeMembers());
  const to = page.reply_to;
  if (!to.every((m) => active.has(m))) throw new UserError(msgs.members_mismatch);
  if (page.conversation.kind !== 'family') {
    const members = await verifyChain(cls, page.conversation, page.chain, msgs);
    const expected = sorted([...members].filter((m) => active.has(m)));
    if (!sameList(expected, to)) throw new UserError(msgs.members_mismatch);
  }
  return to;
}
